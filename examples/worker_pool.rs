//! A pool of N worker slots guarded by a `ShmSemaphore`, shared by forked workers; one worker
//! is SIGKILLed while it holds a slot, and the slot comes back to the others.
//!
//! ```text
//! cargo run --release --example worker_pool -- --slots 3 --workers 8 --jobs 200
//! ```
//!
//! Exits non-zero if more workers than slots were ever busy at once, a job was lost, or the
//! dead worker's slot never came back.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmsync::{ShmBox, ShmSafe, ShmSemaphore};

#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: worker_pool [--slots N] [--workers N] [--jobs N] [--no-kill]

Forked workers share a pool of N slots guarded by a ShmSemaphore: each job takes a slot,
works, and gives it back. One more worker takes a slot and is SIGKILLed holding it; its
permit comes back to the pool, so the others still run with every slot. Ends with OK when
no more than N workers were ever busy at once, every job ran, and every slot came back.

Options:
  --slots N           slots in the pool (1..=31, default 3)
  --workers N         forked workers (1..=64, default 8)
  --jobs N            jobs per worker (1..=1000000, default 200)
  --no-kill           do not kill a worker holding a slot
  -h, --help          print this help
";

struct Args {
    slots: u32,
    workers: u32,
    jobs: u64,
    kill: bool,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Args>, cli::Error> {
    use cli::{Long, Short};
    let mut args = Args {
        slots: 3,
        workers: 8,
        jobs: 200,
        kill: true,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("slots") => args.slots = cli::number(parser, "--slots", 1..=31)?,
            Long("workers") => args.workers = cli::number(parser, "--workers", 1..=64)?,
            Long("jobs") => args.jobs = cli::number(parser, "--jobs", 1..=1_000_000)?,
            Long("no-kill") => args.kill = false,
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(cli::Request::Run(args))
}

/// The pool and what the workers report through shared memory.
#[derive(ShmSafe)]
#[repr(C)]
struct Pool {
    slots: ShmSemaphore,
    /// Workers busy in a slot right now.
    busy: AtomicU32,
    /// The most workers ever busy at once.
    most_busy: AtomicU32,
    /// Jobs done by every worker together.
    done: AtomicU64,
    /// Set by the doomed worker once it holds its slot.
    doomed_holds: AtomicU32,
}

/// One job: take a slot, count ourselves busy, work a little, give the slot back.
fn job(pool: &Pool) {
    let _slot = pool.slots.acquire();
    let now = pool.busy.fetch_add(1, Ordering::SeqCst) + 1;
    pool.most_busy.fetch_max(now, Ordering::SeqCst);
    for _ in 0..200 {
        std::hint::spin_loop();
    }
    pool.busy.fetch_sub(1, Ordering::SeqCst);
    pool.done.fetch_add(1, Ordering::Relaxed);
}

/// Forks a child that runs `body` and `_exit`s with its code.
fn fork(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only uses shmsync primitives and atomics, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = body();
        // SAFETY: ends the child without returning into main.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for `pid` and returns its raw status.
fn reap(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

fn main() -> ExitCode {
    let args = match cli::parse("worker_pool", USAGE, parse_args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let pool = ShmBox::new(Pool {
        slots: ShmSemaphore::new(args.slots),
        busy: AtomicU32::new(0),
        most_busy: AtomicU32::new(0),
        done: AtomicU64::new(0),
        doomed_holds: AtomicU32::new(0),
    })
    .expect("anonymous shared memory");

    if args.kill {
        // The doomed worker takes a slot and sleeps until it is killed.
        let doomed = fork(|| {
            std::mem::forget(pool.slots.acquire());
            pool.doomed_holds.store(1, Ordering::SeqCst);
            loop {
                // SAFETY: pause only sleeps until a signal (here: SIGKILL) arrives.
                unsafe { libc::pause() };
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.doomed_holds.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        println!(
            "parent: worker {doomed} holds a slot ({} of {} free); killing it",
            pool.slots.available_permits(),
            args.slots
        );
        // SAFETY: `doomed` is our child, not yet reaped.
        unsafe { libc::kill(doomed, libc::SIGKILL) };
        reap(doomed);
    }

    let started = Instant::now();
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            fork(|| {
                for _ in 0..args.jobs {
                    job(&pool);
                }
                0
            })
        })
        .collect();
    let failed = workers
        .into_iter()
        .map(reap)
        .filter(|&status| !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0))
        .count();
    // The dead worker's slot is given back when someone next waits for a slot; if nobody had
    // to, this wait brings it back.
    let back: Vec<_> = (0..args.slots)
        .map_while(|_| pool.slots.try_acquire_for(Duration::from_secs(10)))
        .collect();
    let all_back = back.len() == args.slots as usize && pool.slots.try_acquire().is_none();
    drop(back);

    let done = pool.done.load(Ordering::Relaxed);
    let most = pool.most_busy.load(Ordering::SeqCst);
    println!(
        "parent: {done} jobs by {} workers in {:.1?}, at most {most} busy of {} slots",
        args.workers,
        started.elapsed(),
        args.slots
    );
    println!("parent: every slot back in the pool: {all_back}");
    if failed == 0 && done == u64::from(args.workers) * args.jobs && most <= args.slots && all_back
    {
        println!("OK: never more busy workers than slots, and the dead worker's slot came back");
        ExitCode::SUCCESS
    } else {
        println!("FAILED: {failed} workers failed");
        ExitCode::FAILURE
    }
}
