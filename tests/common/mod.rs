//! Helpers shared by the integration tests: forking children with deadlines, spawning this
//! test binary as an unrelated process, waiting on conditions with deadlines, and running a
//! test body on every backend (`backends`).
#![allow(dead_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

#[macro_use]
pub mod backends;

/// How long any child may run before the test calls it hung.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `_exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A forked child. Dropping it SIGKILLs and reaps the child if it is still around, so a
/// failing test leaves no stray process.
pub struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    reaped: bool,
}

/// Forks; the child runs `body` and `_exit`s with its return value (101 if it panics). The
/// child never returns into the test harness.
pub fn fork(body: impl FnOnce() -> i32) -> Child {
    // SAFETY: the child only runs `body` and then `_exit`s; the tests' bodies avoid taking
    // locks that another thread of the harness might have held at the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
        // SAFETY: _exit ends the child at once, without running the harness's code.
        unsafe { libc::_exit(code) };
    }
    Child::adopt(pid)
}

impl Child {
    /// Tracks an already-started child `pid` of this process.
    pub fn adopt(pid: libc::pid_t) -> Child {
        Child {
            pid,
            pidfd: pidfd_open(pid),
            reaped: false,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: i32) {
        // SAFETY: the child is not reaped yet, so `pid` still names it.
        unsafe { libc::kill(self.pid, signal) };
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(mut self) -> Exit {
        self.signal(libc::SIGKILL);
        self.wait()
    }

    /// Waits until the child has exited (it stays a zombie: not reaped), or `timeout` passes.
    pub fn wait_exited(&self, timeout: Duration) -> bool {
        poll_exited(&self.pidfd, timeout)
    }

    /// Waits up to `timeout` for the child to end and reaps it; `None` if it is still
    /// running (it is then left running; dropping the `Child` kills it).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Exit> {
        if !self.wait_exited(timeout) {
            return None;
        }
        let mut status = 0;
        // SAFETY: `status` is writable; the child has exited, so this does not block.
        let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(rc, self.pid, "waitpid: {}", io::Error::last_os_error());
        self.reaped = true;
        Some(if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else {
            Exit::Signal(libc::WTERMSIG(status))
        })
    }

    /// Waits for the child (at most `CHILD_DEADLINE`) and reaps it; a hang fails the test.
    pub fn wait(&mut self) -> Exit {
        match self.wait_timeout(CHILD_DEADLINE) {
            Some(exit) => exit,
            None => panic!("child {} still running after {CHILD_DEADLINE:?}", self.pid),
        }
    }

    /// Waits for the child and asserts that it exited with code 0.
    pub fn join(mut self) {
        let pid = self.pid;
        assert_eq!(self.wait(), Exit::Code(0), "child {pid} failed");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(libc::SIGKILL);
            let mut status = 0;
            // SAFETY: reaps our own child; blocks only until the SIGKILL lands.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
        }
    }
}

/// A pidfd for `pid` (Linux 5.3), readable once the process has exited.
pub fn pidfd_open(pid: libc::pid_t) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(fd >= 0, "pidfd_open failed: {}", io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Waits up to `timeout` for the process behind `pidfd` to exit.
pub fn poll_exited(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `pfd` is a valid pollfd array of length 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return true;
        }
        if rc == 0 {
            return false;
        }
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EINTR));
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held. For
/// conditions that have no event to wait on (another process's progress in shared memory).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
        std::hint::spin_loop();
    }
}

/// The environment variable that tells a re-spawned test binary which role to play.
pub const ROLE_VAR: &str = "SHMSYNC_TEST_ROLE";

/// Runs the test named `test` (a `#[test]` fn in the same test binary, which checks
/// `role()`) as an unrelated process with `role` set; returns its exit status.
pub fn spawn_role(test: &str, role: &str, args: &[(&str, &str)]) -> std::process::Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role);
    for (k, v) in args {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn test binary")
}

/// The role this test process was spawned to play, if any.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// Waits up to `CHILD_DEADLINE` for a spawned process and returns its exit code.
pub fn wait_spawned(mut child: std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + CHILD_DEADLINE;
    let pidfd = pidfd_open(child.id() as libc::pid_t);
    if !poll_exited(&pidfd, deadline.saturating_duration_since(Instant::now())) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("spawned process {} hung", child.id());
    }
    child.wait().expect("wait").code()
}

/// A name for a POSIX segment unique to this process and `tag`.
pub fn unique_name(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("/shmsync-test-{}-{tag}-{n}", std::process::id())
}

/// xorshift64*: a small deterministic PRNG, so that a failing fuzz case can be replayed.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (zero is replaced by a fixed constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// Asserts that `m`, a non-robust C mutex whose holder died, stays locked: timed attempts
/// time out with `WouldBlock` (never hang), and so does a plain try.
pub fn assert_stays_locked<T: shmsync::ShmSafe>(m: &shmsync::interop::CMutex<T>) {
    use std::sync::TryLockError;
    for _ in 0..3 {
        let attempt = m.try_lock_for(Duration::from_millis(20)).unwrap();
        assert!(matches!(attempt, Err(TryLockError::WouldBlock)));
    }
    assert!(matches!(
        m.try_lock().unwrap(),
        Err(TryLockError::WouldBlock)
    ));
}
