//! The "writeshm" half of the classic pair: posts numbered messages to a POSIX named segment
//! and wakes every reader through a `ShmCondvar`.
//!
//! ```text
//! cargo run --example reader -- --name /board --until-last --unlink &
//! cargo run --example writer -- --name /board --count 10 --interval-ms 100 --last
//! ```
//!
//! A writer may be killed at any moment (even holding the lock) and a new one started: the
//! reader carries on, and the new writer continues the numbering.

#[path = "shared/board.rs"]
mod board;
#[path = "shared/cli.rs"]
mod cli;

use std::process::ExitCode;
use std::time::Duration;

use board::{Message, TEXT};

const USAGE: &str = "\
Usage: writer [--name NAME] [--count N] [--interval-ms MS] [--last]

Posts numbered messages (\"message SEQ from pid PID\") to the board in the POSIX named
segment NAME, creating it if needed, and wakes every reader through a ShmCondvar. The
numbering continues from whatever the board holds. Ends with OK after the last post; the
segment stays for the readers (`reader --unlink` removes it).

Options:
  --name NAME         the segment: a leading '/' and no other (default /shmsync-board)
  --count N           messages to post (1..=1000000000, default 10)
  --interval-ms MS    pause between two messages (0..=60000, default 100)
  --last              mark the final message \"(last)\": `reader --until-last` ends on it
  -h, --help          print this help
";

struct Args {
    name: String,
    count: u64,
    interval: Duration,
    mark_last: bool,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Args>, cli::Error> {
    use cli::{Long, Short};
    let mut args = Args {
        name: board::DEFAULT_NAME.to_string(),
        count: 10,
        interval: Duration::from_millis(100),
        mark_last: false,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("name") => args.name = board::name(parser)?,
            Long("count") => args.count = cli::number(parser, "--count", 1..=1_000_000_000)?,
            Long("interval-ms") => {
                let ms = cli::number(parser, "--interval-ms", 0..=60_000)?;
                args.interval = Duration::from_millis(ms);
            }
            Long("last") => args.mark_last = true,
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(cli::Request::Run(args))
}

fn main() -> ExitCode {
    let args = match cli::parse("writer", USAGE, parse_args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let board = match board::open("writer", &args.name) {
        Ok(board) => board,
        Err(code) => return code,
    };
    let pid = std::process::id();
    let mut first = None;
    let mut seq = 0;
    for i in 0..args.count {
        let mut latest = match board.latest.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // A previous writer died mid-update: this message overwrites whatever it left.
                eprintln!("writer: a previous writer died holding the lock; taking over");
                board.latest.clear_poison();
                poisoned.into_inner()
            }
        };
        seq = latest.seq + 1;
        let text = Message::expected_text(seq, pid, args.mark_last && i + 1 == args.count);
        let bytes = &text.as_bytes()[..text.len().min(TEXT)];
        latest.seq = seq;
        latest.writer_pid = pid;
        latest.text[..bytes.len()].copy_from_slice(bytes);
        latest.len = bytes.len() as u32;
        drop(latest);
        board.posted.notify_all();
        first.get_or_insert(seq);
        println!("writer: posted {text}");
        if i + 1 < args.count {
            std::thread::sleep(args.interval);
        }
    }
    let first = first.unwrap_or(seq);
    println!(
        "OK: posted {} messages (seq {first}..={seq}) to {}",
        args.count, args.name
    );
    ExitCode::SUCCESS
}
