//! The "writeshm" half of the classic pair: posts numbered messages to a POSIX named segment
//! and wakes every reader through a `ShmCondvar`.
//!
//! ```text
//! cargo run --example reader -- --name /board --until-last &
//! cargo run --example writer -- --name /board --count 10 --interval-ms 100 --last
//! ```
//!
//! A writer may be killed at any moment (even holding the lock) and a new one started: the
//! reader carries on, and the new writer continues the numbering.

#[path = "shared/board.rs"]
mod board;

use std::process::ExitCode;
use std::time::Duration;

use board::{arg, Board, Message, TEXT};
use shmsync::ShmBox;

fn main() -> ExitCode {
    let name = arg("--name").unwrap_or_else(|| "/shmsync-board".to_string());
    let count: u64 = arg("--count").map_or(10, |v| v.parse().expect("--count takes a number"));
    let interval =
        Duration::from_millis(arg("--interval-ms").map_or(100, |v| v.parse().expect("a number")));
    let mark_last = std::env::args().any(|a| a == "--last");
    let board = match ShmBox::open_or_create(&name, Board::empty) {
        Ok(board) => board,
        Err(e) => {
            eprintln!("writer: {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid = std::process::id();
    for i in 0..count {
        let mut latest = match board.latest.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // A previous writer died mid-update: this message overwrites whatever it left.
                eprintln!("writer: a previous writer died holding the lock; taking over");
                board.latest.clear_poison();
                poisoned.into_inner()
            }
        };
        let seq = latest.seq + 1;
        let text = Message::expected_text(seq, pid, mark_last && i + 1 == count);
        let bytes = &text.as_bytes()[..text.len().min(TEXT)];
        latest.seq = seq;
        latest.writer_pid = pid;
        latest.text[..bytes.len()].copy_from_slice(bytes);
        latest.len = bytes.len() as u32;
        drop(latest);
        board.posted.notify_all();
        println!("writer: posted {text}");
        std::thread::sleep(interval);
    }
    ExitCode::SUCCESS
}
