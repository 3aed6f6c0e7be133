//! A memfd segment passed to unrelated processes over a Unix socket: the parent makes a
//! `ShmBox<ShmMutex<Tally>>` with `memfd_create`, starts workers by running this program
//! again (a new program image, not a fork: they inherit neither the memfd nor the mapping),
//! and sends each one the segment's descriptor with `SCM_RIGHTS`. Every process counts under
//! the mutex; the total must be exact.
//!
//! ```text
//! cargo run --example fd_passing -- --workers 2 --iterations 100000
//! ```

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use shmsync::{ShmBox, ShmMutex, ShmSafe};

#[path = "shared/cli.rs"]
mod cli;
#[path = "shared/scm_rights.rs"]
mod scm_rights;

const USAGE: &str = "\
Usage: fd_passing [--workers N] [--iterations N]

Makes a memfd segment holding a counter under a ShmMutex, starts N workers by running this
program again (new processes that share nothing with it), and passes each the segment's file
descriptor over a Unix socket (SCM_RIGHTS). Every process adds 1 to the counter ITERATIONS
times under the mutex. Ends with OK when the count is exact.

Options:
  --workers N         worker processes to start (1..=16, default 2)
  --iterations N      increments by each process (1..=100000000, default 100000)
  --join SOCKET       run as a worker: connect to SOCKET and open the segment received there
                      (how the parent starts its workers)
  -h, --help          print this help
";

/// How long the parent waits for its workers to connect, and to finish.
const DEADLINE: Duration = Duration::from_secs(60);

/// What a run is asked to do.
struct Settings {
    workers: u32,
    iterations: u64,
    join: Option<PathBuf>,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Settings>, cli::Error> {
    use cli::{Long, Short};
    let mut settings = Settings {
        workers: 2,
        iterations: 100_000,
        join: None,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("workers") => settings.workers = cli::number(parser, "--workers", 1..=16)?,
            Long("iterations") => {
                settings.iterations = cli::number(parser, "--iterations", 1..=100_000_000)?
            }
            Long("join") => settings.join = Some(parser.value()?.into()),
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(cli::Request::Run(settings))
}

/// The shared state: the count, and how many processes finished counting.
#[derive(ShmSafe)]
#[repr(C)]
struct Tally {
    count: u64,
    finished: u32,
}

type Segment = ShmBox<ShmMutex<Tally>>;

fn main() -> ExitCode {
    let settings = match cli::parse("fd_passing", USAGE, parse_args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    // A worker's last line is not the run's verdict: only the parent's says OK.
    let (outcome, ok) = match &settings.join {
        Some(socket) => (worker(socket, settings.iterations), ""),
        None => (parent(&settings), "OK: "),
    };
    match outcome {
        Ok(verdict) => {
            println!("{ok}{verdict}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Adds 1 to the count `iterations` times, then marks this process finished.
fn count(segment: &Segment, iterations: u64) -> Result<(), String> {
    for _ in 0..iterations {
        segment.lock().map_err(|_| "the mutex is poisoned")?.count += 1;
    }
    segment
        .lock()
        .map_err(|_| "the mutex is poisoned")?
        .finished += 1;
    Ok(())
}

/// A worker: receives the segment's descriptor on `socket`, opens it, and counts.
fn worker(socket: &Path, iterations: u64) -> Result<String, String> {
    let me = std::process::id();
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("worker {me}: connect to {}: {e}", socket.display()))?;
    let fd = scm_rights::recv_fd(&stream).map_err(|e| format!("worker {me}: recvmsg: {e}"))?;
    let raw = fd.as_raw_fd();
    let segment = Segment::from_fd(fd).map_err(|e| format!("worker {me}: from_fd: {e}"))?;
    let link = std::fs::read_link(format!("/proc/self/fd/{raw}")).unwrap_or_default();
    println!(
        "worker {me}: received descriptor {raw} ({}), opened it as a ShmMutex<Tally>",
        link.display()
    );
    count(&segment, iterations)?;
    Ok(format!("worker {me}: counted {iterations}"))
}

/// Removes the socket's path when dropped, and kills workers still running.
struct Cleanup {
    socket: PathBuf,
    workers: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        for worker in &mut self.workers {
            if matches!(worker.try_wait(), Ok(None)) {
                let _ = worker.kill();
                let _ = worker.wait();
            }
        }
    }
}

/// The parent: makes the segment, starts the workers, hands each the descriptor, counts,
/// and checks the total once every worker has exited.
fn parent(settings: &Settings) -> Result<String, String> {
    let segment = Segment::memfd_create(
        "fd-passing",
        ShmMutex::new(Tally {
            count: 0,
            finished: 0,
        }),
    )
    .map_err(|e| format!("memfd_create: {e}"))?;
    let fd = segment.memfd().expect("a memfd box");
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    println!(
        "parent {}: memfd segment {}",
        std::process::id(),
        link.map(|l| l.display().to_string()).unwrap_or_default()
    );

    let socket =
        std::env::temp_dir().join(format!("shmsync-fd-passing-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).map_err(|e| format!("bind {}: {e}", socket.display()))?;
    let mut cleanup = Cleanup {
        socket: socket.clone(),
        workers: Vec::new(),
    };
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    for _ in 0..settings.workers {
        let iterations = settings.iterations.to_string();
        let worker = Command::new(&exe)
            .arg("--join")
            .arg(&socket)
            .args(["--iterations", &iterations])
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", exe.display()))?;
        cleanup.workers.push(worker);
    }
    let deadline = Instant::now() + DEADLINE;
    for _ in 0..settings.workers {
        let stream = accept(&listener, &mut cleanup.workers, deadline)?;
        scm_rights::send_fd(&stream, fd).map_err(|e| format!("sendmsg: {e}"))?;
    }
    println!(
        "parent: passed the descriptor to {} workers over {}",
        settings.workers,
        socket.display()
    );
    count(&segment, settings.iterations)?;
    for worker in &mut cleanup.workers {
        let status = wait(worker, deadline)?;
        if !status.success() {
            return Err(format!("worker {} ended with {status}", worker.id()));
        }
    }
    let tally = segment.lock().map_err(|_| "the mutex is poisoned")?;
    let processes = u64::from(settings.workers) + 1;
    let expected = processes * settings.iterations;
    println!(
        "count {} from {} processes (expected {expected})",
        tally.count, tally.finished
    );
    if tally.count != expected || u64::from(tally.finished) != processes {
        return Err(format!("count {}, expected {expected}", tally.count));
    }
    Ok(format!(
        "{processes} processes ({} started with exec, not forked) counted {expected} in one memfd \
         segment passed over a Unix socket",
        settings.workers
    ))
}

/// The next worker's connection; fails when a worker ends first or the deadline passes.
fn accept(
    listener: &UnixListener,
    workers: &mut [Child],
    deadline: Instant,
) -> Result<UnixStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("accept: {e}")),
        }
        for worker in workers.iter_mut() {
            if let Ok(Some(status)) = worker.try_wait() {
                return Err(format!(
                    "worker {} ended before it connected: {status}",
                    worker.id()
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no worker connected within {DEADLINE:?}"));
        }
        poll_readable(listener, Duration::from_millis(50));
    }
}

/// Waits up to `timeout` for a connection on `listener`.
fn poll_readable(listener: &UnixListener, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd; an interrupted or failed poll only ends the wait.
    unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
}

/// Waits for `worker` to exit, killing it at the deadline.
fn wait(worker: &mut Child, deadline: Instant) -> Result<std::process::ExitStatus, String> {
    loop {
        if let Some(status) = worker.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "worker {} still running after {DEADLINE:?}",
                worker.id()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
