//! The "readshm" half of the classic pair: waits on a `ShmCondvar` for new messages in a
//! POSIX named segment and prints them. Survives writers that are killed and restarted.
//!
//! ```text
//! cargo run --example reader -- --name /board --until-last --timeout-secs 60 --unlink [--quiet]
//! ```
//!
//! Exits 0 after the message marked "(last)"; non-zero on a timeout or a torn message that
//! was not flagged by poisoning.

#[path = "shared/board.rs"]
mod board;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use board::{arg, Board};
use shmsync::ShmBox;

fn main() -> ExitCode {
    let name = arg("--name").unwrap_or_else(|| "/shmsync-board".to_string());
    let timeout =
        Duration::from_secs(arg("--timeout-secs").map_or(60, |v| v.parse().expect("a number")));
    let until_last = std::env::args().any(|a| a == "--until-last");
    let unlink = std::env::args().any(|a| a == "--unlink");
    let quiet = std::env::args().any(|a| a == "--quiet");
    let board = match ShmBox::open_or_create(&name, Board::empty) {
        Ok(board) => board,
        Err(e) => {
            eprintln!("reader: {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let (mut last_seen, mut received, mut recovered) = (0u64, 0u64, 0u64);
    let outcome = loop {
        let Some(left) = timeout.checked_sub(started.elapsed()) else {
            break Err("timed out waiting for the last message");
        };
        let guard = board
            .latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let waited = board
            .posted
            .wait_timeout_while(guard, left, |m| m.seq == last_seen);
        let (message, poisoned) = match waited {
            Ok((guard, _)) => (*guard, false),
            Err(poisoned) => (*poisoned.into_inner().0, true),
        };
        if poisoned {
            // The writer died holding the lock: the message may be half-written.
            println!(
                "reader: a writer died mid-update (seq {}); recovering",
                message.seq
            );
            board.latest.clear_poison();
            recovered += 1;
            last_seen = message.seq;
            continue;
        }
        if message.seq == last_seen {
            continue;
        }
        if !message.is_whole() {
            break Err("torn message without poisoning");
        }
        received += 1;
        last_seen = message.seq;
        if !quiet {
            println!("reader: {}", message.text());
        }
        if until_last && message.text().ends_with("(last)") {
            break Ok(());
        }
    };
    println!("reader: received {received} messages, recovered from {recovered} writer deaths");
    if unlink {
        let _ = ShmBox::<Board>::unlink(&name);
    }
    match outcome {
        Ok(()) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}
