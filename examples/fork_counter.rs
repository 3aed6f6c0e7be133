//! A parent and N forked children share a `#[repr(C)]` struct under a `ShmMutex`; the last
//! child to finish hands "all done" to the parent through a `ShmCondvar`.
//!
//! ```text
//! cargo run --release --example fork_counter -- --children 4 --iterations 100000 --backend futex
//! ```
//!
//! Exits non-zero if any update was lost or torn, or a child failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use shmsync::{ShmBox, ShmSafe};

/// The shared state: a counter, a running checksum that must always equal `count * 7`, and how
/// many children have finished.
#[derive(ShmSafe, Clone, Copy)]
#[repr(C)]
struct Tally {
    count: u64,
    checksum: u64,
    finished: u32,
}

#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: fork_counter [--children N] [--iterations N] [--backend futex|pthread]

A parent and N forked children share a counter under a ShmMutex; the last child to finish
wakes the parent through a ShmCondvar. Ends with OK when no update was lost or torn.

Options:
  --children N        forked children (1..=1024, default 4)
  --iterations N      increments per child (default 100000)
  --backend B         futex (default, Linux) or pthread
  -h, --help          print this help
";

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Futex,
    Pthread,
}

struct Args {
    children: u32,
    iterations: u64,
    backend: Backend,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Args>, cli::Error> {
    use cli::{Long, Short};
    let mut args = Args {
        children: 4,
        iterations: 100_000,
        backend: Backend::Futex,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("children") => args.children = cli::number(parser, "--children", 1..=1024)?,
            Long("iterations") => {
                args.iterations = cli::number(parser, "--iterations", 1..=u64::MAX)?
            }
            Long("backend") => {
                args.backend = match cli::value::<String>(parser, "--backend")?.as_str() {
                    "futex" => Backend::Futex,
                    "pthread" => Backend::Pthread,
                    other => {
                        return Err(
                            format!("--backend must be futex or pthread, not {other:?}").into()
                        )
                    }
                }
            }
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    // The checksum is `count * 7` and must fit a u64.
    let fits = u64::from(args.children)
        .checked_mul(args.iterations)
        .and_then(|n| n.checked_mul(7))
        .is_some();
    if !fits {
        return Err("--children x --iterations is too large to count".into());
    }
    Ok(cli::Request::Run(args))
}

/// Runs the demo on one backend; a macro because the two backends' types differ.
macro_rules! run {
    ($backend:ident, $args:expr) => {{
        use shmsync::$backend::{ShmCondvar, ShmMutex};

        #[derive(ShmSafe)]
        #[repr(C)]
        struct Shared {
            tally: ShmMutex<Tally>,
            all_done: ShmCondvar,
        }

        let args: &Args = $args;
        let shared = ShmBox::new(Shared {
            tally: ShmMutex::new(Tally {
                count: 0,
                checksum: 0,
                finished: 0,
            }),
            all_done: ShmCondvar::new(),
        })
        .expect("anonymous shared memory");
        let started = Instant::now();
        let mut pids = Vec::new();
        for _ in 0..args.children {
            // SAFETY: the child only locks shmsync primitives in shared memory and `_exit`s.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let mut ok = true;
                for _ in 0..args.iterations {
                    let mut tally = shared.tally.lock().expect("not poisoned");
                    ok &= tally.checksum == tally.count * 7;
                    tally.count += 1;
                    tally.checksum += 7;
                }
                let mut tally = shared.tally.lock().expect("not poisoned");
                tally.finished += 1;
                if tally.finished == args.children {
                    shared.all_done.notify_all();
                }
                drop(tally);
                // SAFETY: ends the child without unwinding into the parent's code.
                unsafe { libc::_exit(if ok { 0 } else { 3 }) };
            }
            pids.push(pid);
        }
        let (tally, waited) = shared
            .all_done
            .wait_timeout_while(
                shared.tally.lock().expect("not poisoned"),
                Duration::from_secs(120),
                |t| t.finished < args.children,
            )
            .expect("not poisoned");
        let snapshot = *tally;
        drop(tally);
        let elapsed = started.elapsed();
        let mut children_ok = !waited.timed_out();
        for pid in pids {
            let mut status = 0;
            // SAFETY: reaps our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            children_ok &= libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        (snapshot, elapsed, children_ok)
    }};
}

fn main() -> ExitCode {
    let args = match cli::parse("fork_counter", USAGE, parse_args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (tally, elapsed, children_ok) = match args.backend {
        Backend::Pthread => run!(pthread, &args),
        Backend::Futex => run!(futex, &args),
    };
    let backend = match args.backend {
        Backend::Futex => "futex",
        Backend::Pthread => "pthread",
    };
    let expected = u64::from(args.children) * args.iterations;
    let lost = expected.saturating_sub(tally.count);
    let torn = tally.checksum != tally.count * 7;
    let ops = tally.count as f64 / elapsed.as_secs_f64();
    println!("backend:      {backend}");
    println!(
        "children:     {} x {} increments",
        args.children, args.iterations
    );
    println!("count:        {} (expected {expected})", tally.count);
    println!("finished:     {}/{}", tally.finished, args.children);
    println!("throughput:   {:.2} Mops/s over {:.1?}", ops / 1e6, elapsed);
    println!("lost updates: {lost}");
    println!("torn updates: {}", if torn { "yes" } else { "none" });
    if lost == 0 && !torn && children_ok && tally.count == expected {
        println!(
            "OK: {} processes made {expected} increments under one {backend} ShmMutex; none lost or torn",
            args.children
        );
        ExitCode::SUCCESS
    } else if !children_ok {
        println!("FAILED: a child failed or the parent gave up waiting for \"all done\"");
        ExitCode::FAILURE
    } else {
        println!("FAILED: {lost} updates lost, torn: {torn}");
        ExitCode::FAILURE
    }
}
