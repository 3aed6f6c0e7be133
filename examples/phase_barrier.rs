//! A phase barrier for N forked workers: every worker finishes phase p before any starts
//! phase p + 1. One worker is SIGKILLed in the middle of a phase; the others get
//! `BarrierError::Broken` instead of hanging, a replacement joins in its place, and the run
//! goes on from the broken phase.
//!
//! ```text
//! cargo run --release --example phase_barrier -- --workers 4 --phases 100 --kill-at 40
//! ```
//!
//! Exits non-zero if a worker ever passed a phase before all the others reached it, a phase
//! had no single leader, or the death left the others hanging.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmsync::{BarrierError, ShmBarrier, ShmBox, ShmSafe};

#[path = "shared/children.rs"]
mod children;
#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: phase_barrier [--workers N] [--phases N] [--kill-at P] [--no-kill]

Forked workers go through the phases in lockstep on a ShmBarrier: in each phase a worker
marks its progress, waits at the barrier, and checks that every worker reached the phase and
none is past it. Worker 0 is SIGKILLed in phase P; the others see the generation break, a
replacement joins in the dead worker's place, and all redo phase P and go on. Ends with OK
when every phase had every worker and one leader, and nobody hung.

Options:
  --workers N         forked workers (2..=32, default 4)
  --phases N          phases (1..=100000, default 100)
  --kill-at P         the phase worker 0 dies in (default: half way)
  --no-kill           let every worker live
  -h, --help          print this help
";

struct Args {
    workers: u32,
    phases: u32,
    kill_at: Option<u32>,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Args>, cli::Error> {
    use cli::{Long, Short};
    let (mut workers, mut phases, mut kill_at, mut kill) = (4, 100, None, true);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("workers") => workers = cli::number(parser, "--workers", 2..=32)?,
            Long("phases") => phases = cli::number(parser, "--phases", 1..=100_000)?,
            Long("kill-at") => kill_at = Some(cli::value(parser, "--kill-at")?),
            Long("no-kill") => kill = false,
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    let kill_at = kill_at.unwrap_or(phases / 2);
    if kill && kill_at >= phases {
        return Err(format!("--kill-at must be below --phases ({phases}), not {kill_at}").into());
    }
    Ok(cli::Request::Run(Args {
        workers,
        phases,
        kill_at: kill.then_some(kill_at),
    }))
}

/// The most workers (the barrier's most parties).
const MAX_WORKERS: usize = ShmBarrier::MAX_PARTIES as usize;

/// The barrier and what the workers report through shared memory.
#[derive(ShmSafe)]
#[repr(C)]
struct Run {
    barrier: ShmBarrier,
    /// Each worker's progress: p + 1 once it has done phase p's work.
    marks: [AtomicU32; MAX_WORKERS],
    /// Phases that completed (counted by their leaders).
    completed: AtomicU32,
    /// Checks that failed: a worker behind or ahead after a barrier.
    out_of_step: AtomicU32,
    /// The phase + 1 in which a survivor saw the generation break; 0 before.
    broken_at: AtomicU32,
}

/// Worker `me` from phase `first` on; joins first. Dies in `kill_at` if that is given.
fn worker(run: &Run, me: usize, workers: usize, first: u32, phases: u32, kill_at: Option<u32>) {
    let mut party = run.barrier.join().expect("a free place at the barrier");
    let mut phase = first;
    while phase < phases {
        run.marks[me].store(phase + 1, Ordering::SeqCst);
        if kill_at == Some(phase) {
            // SAFETY: raise only sends a signal to this process; SIGKILL ends it here.
            unsafe { libc::raise(libc::SIGKILL) };
        }
        match party.wait() {
            Ok(result) => {
                if result.is_leader() {
                    run.completed.fetch_add(1, Ordering::SeqCst);
                }
                let out_of_step = run.marks[..workers].iter().any(|m| {
                    let mark = m.load(Ordering::SeqCst);
                    mark < phase + 1 || mark > phase + 2
                });
                if out_of_step {
                    run.out_of_step.fetch_add(1, Ordering::SeqCst);
                }
                phase += 1;
            }
            // A worker died in this phase: redo it once a replacement has joined.
            Err(BarrierError::Broken) => run.broken_at.store(phase + 1, Ordering::SeqCst),
            Err(BarrierError::TimedOut) => unreachable!("wait has no timeout"),
        }
    }
}

fn main() -> ExitCode {
    let args = match cli::parse("phase_barrier", USAGE, parse_args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let workers = args.workers as usize;
    let run = ShmBox::new(Run {
        barrier: ShmBarrier::new(args.workers),
        marks: std::array::from_fn(|_| AtomicU32::new(0)),
        completed: AtomicU32::new(0),
        out_of_step: AtomicU32::new(0),
        broken_at: AtomicU32::new(0),
    })
    .expect("anonymous shared memory");
    let started = Instant::now();
    let (phases, kill_at) = (args.phases, args.kill_at);
    let doomed = children::fork(|| worker(&run, 0, workers, 0, phases, kill_at));
    let mut pids: Vec<_> = (1..workers)
        .map(|me| children::fork(|| worker(&run, me, workers, 0, phases, None)))
        .collect();

    let mut recovered = true;
    if let Some(kill_at) = kill_at {
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(doomed, &mut status, 0) };
        let killed = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
        println!("parent: worker 0 died in phase {kill_at} (SIGKILL: {killed})");
        // The survivors find the death by themselves; wait for one of them to say so.
        let deadline = Instant::now() + Duration::from_secs(10);
        while run.broken_at.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let broken_at = run.broken_at.load(Ordering::SeqCst);
        recovered = killed && broken_at == kill_at + 1;
        println!(
            "parent: the survivors saw the generation break in phase {} after {:.1?}; a replacement joins",
            broken_at.saturating_sub(1),
            started.elapsed()
        );
        pids.push(children::fork(|| {
            worker(&run, 0, workers, kill_at, phases, None)
        }));
    } else {
        pids.push(doomed);
    }
    let all_ok = children::reap_all(pids);

    let completed = run.completed.load(Ordering::SeqCst);
    let out_of_step = run.out_of_step.load(Ordering::SeqCst);
    println!(
        "parent: {completed} of {phases} phases completed by {workers} workers in {:.1?}, {out_of_step} out of step",
        started.elapsed()
    );
    if all_ok && recovered && completed == phases && out_of_step == 0 {
        println!("OK: every phase had every worker and one leader, and nobody hung");
        ExitCode::SUCCESS
    } else {
        println!("FAILED");
        ExitCode::FAILURE
    }
}
