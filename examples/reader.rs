//! The "readshm" half of the classic pair: waits on a `ShmCondvar` for new messages in a
//! POSIX named segment and prints them. Survives writers that are killed and restarted.
//!
//! ```text
//! cargo run --example reader -- --name /board --until-last --unlink &
//! cargo run --example writer -- --name /board --count 10 --interval-ms 100 --last
//! ```
//!
//! The reader shows the messages posted after it started, never an older one left on the
//! board. With `--until-last` it ends after the message marked "(last)" (exit 0) and a timeout
//! is a failure; without it, it listens for `--timeout-secs` and succeeds if any message came.
//! A torn message that was not flagged by poisoning is always a failure.

#[path = "shared/board.rs"]
mod board;
#[path = "shared/cli.rs"]
mod cli;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use board::Board;
use shmsync::ShmBox;

const USAGE: &str = "\
Usage: reader [--name NAME] [--until-last] [--timeout-secs S] [--unlink] [--quiet]

Waits on a ShmCondvar for the messages that writers post to the board in the POSIX named
segment NAME (creating it if needed) and prints each one. Only messages posted after the
reader started count: one left on the board by an earlier run is not shown. The board holds
only the latest message, so a reader slower than the writers skips some (the gap shows in the
numbers). A writer that dies mid-update poisons the lock; the reader reports it, recovers and
goes on.

How it ends:
  with --until-last   after the message marked \"(last)\" (`writer --last`): OK, exit 0;
                      if S seconds pass first: FAILED, exit 1
  without it          after listening for S seconds: OK if at least one message came,
                      FAILED (exit 1) if none did
  either way          a torn message that no poisoning explains: FAILED, exit 1

Options:
  --name NAME         the segment: a leading '/' and no other (default /shmsync-board)
  --until-last        end on the message marked \"(last)\"
  --timeout-secs S    how long to wait (1..=86400, default 60)
  --unlink            remove NAME when the reader ends, so that the next run starts with a
                      fresh board (otherwise the segment stays in /dev/shm)
  --quiet             print only the summary, not each message
  -h, --help          print this help
";

struct Args {
    name: String,
    until_last: bool,
    timeout: Duration,
    unlink: bool,
    quiet: bool,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Args>, cli::Error> {
    use cli::{Long, Short};
    let mut args = Args {
        name: board::DEFAULT_NAME.to_string(),
        until_last: false,
        timeout: Duration::from_secs(60),
        unlink: false,
        quiet: false,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("name") => args.name = board::name(parser)?,
            Long("until-last") => args.until_last = true,
            Long("timeout-secs") => {
                let secs = cli::number(parser, "--timeout-secs", 1..=86_400)?;
                args.timeout = Duration::from_secs(secs);
            }
            Long("unlink") => args.unlink = true,
            Long("quiet") => args.quiet = true,
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(cli::Request::Run(args))
}

/// Why the reader stopped reading.
enum End {
    /// The message marked "(last)" arrived.
    Last,
    /// The timeout passed.
    TimedOut,
    /// A message's text did not match its header, and no writer death explained it.
    Torn,
}

/// What the reader saw.
#[derive(Default)]
struct Tally {
    received: u64,
    recovered: u64,
}

fn main() -> ExitCode {
    let args = match cli::parse("reader", USAGE, parse_args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let board = match board::open("reader", &args.name) {
        Ok(board) => board,
        Err(code) => return code,
    };
    let mut tally = Tally::default();
    let end = read(&board, &args, &mut tally);
    if args.unlink {
        let _ = ShmBox::<Board>::unlink(&args.name);
    }
    verdict(end, &args, tally)
}

/// Prints the one-line verdict and returns the exit code.
fn verdict(end: End, args: &Args, tally: Tally) -> ExitCode {
    let Tally {
        received,
        recovered,
    } = tally;
    let secs = args.timeout.as_secs();
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let deaths = match recovered {
        0 => String::new(),
        n => format!(", recovered from {n} writer death{}", plural(n)),
    };
    match end {
        End::Last => {
            println!(
                "OK: received {received} message{} up to the last one{deaths}",
                plural(received)
            );
            ExitCode::SUCCESS
        }
        End::TimedOut if args.until_last => {
            println!(
                "FAILED: no message marked \"(last)\" within {secs} s ({received} others{deaths})"
            );
            ExitCode::FAILURE
        }
        End::TimedOut if received > 0 => {
            println!(
                "OK: received {received} message{} in {secs} s{deaths}",
                plural(received)
            );
            ExitCode::SUCCESS
        }
        End::TimedOut => {
            println!("FAILED: no message within {secs} s{deaths}");
            ExitCode::FAILURE
        }
        End::Torn => {
            println!("FAILED: a torn message without poisoning (after {received} whole)");
            ExitCode::FAILURE
        }
    }
}

/// Prints the messages posted from now on until `args` says to stop.
fn read(board: &Board, args: &Args, tally: &mut Tally) -> End {
    let started = Instant::now();
    // Whatever the board holds now was posted before this reader started.
    let mut last_seen = match board.latest.lock() {
        Ok(guard) => guard.seq,
        Err(poisoned) => poisoned.into_inner().seq,
    };
    println!(
        "reader: waiting on {} for messages after seq {last_seen}",
        args.name
    );
    loop {
        let Some(left) = args.timeout.checked_sub(started.elapsed()) else {
            return End::TimedOut;
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
            tally.recovered += 1;
            last_seen = message.seq;
            continue;
        }
        if message.seq == last_seen {
            continue;
        }
        if !message.is_whole() {
            return End::Torn;
        }
        tally.received += 1;
        last_seen = message.seq;
        if !args.quiet {
            println!("reader: {}", message.text());
        }
        if args.until_last && message.text().ends_with("(last)") {
            return End::Last;
        }
    }
}
