//! Helpers and data shared by the backend test bodies. The bodies in `mutex`, `poison` and
//! `condvar` are generic over the backend; `tests/backend_suite.rs` runs each on every backend.
//!
//! Every forked child does its work and `_exit`s with a code the parent asserts; every wait
//! has a deadline, so a deadlock fails the test instead of hanging it.

pub mod condvar;
pub mod mutex;
pub mod poison;
mod pthread_init;

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::time::Duration;

use crate::common::{self, Child};

/// How long a test waits for another process's progress before calling it hung; condvar
/// waits inside children use it as their timeout. Below `common::CHILD_DEADLINE`, so a child
/// that times out reports it with its exit code.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Exit code of a child whose lock or wait result was not the expected one.
pub const WRONG_RESULT: i32 = 2;
/// Exit code of a child that saw a torn update: the lock did not exclude another process.
pub const TORN: i32 = 3;
/// Exit code of a child whose timed wait ran out.
pub const TIMED_OUT: i32 = 4;

/// A value with redundancy: every field is a function of `count`, so an update interleaved
/// with another process's shows up as a mismatch.
#[derive(shmsync::ShmSafe, Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Tally {
    /// How many updates were made.
    pub count: u64,
    /// Always equal to `count`.
    pub mirror: u64,
    /// Always `checksum_of(count)`.
    pub checksum: u64,
}

impl Tally {
    /// No updates yet.
    pub const ZERO: Tally = Tally {
        count: 0,
        mirror: 0,
        checksum: checksum_of(0),
    };

    /// Whether the fields agree with each other.
    pub fn is_consistent(&self) -> bool {
        self.mirror == self.count && self.checksum == checksum_of(self.count)
    }

    /// One update, written field by field so that a second writer would tear it.
    pub fn bump(&mut self) {
        self.count += 1;
        // Widen the window in which a second writer would find a half-made update.
        for _ in 0..16 {
            std::hint::black_box(&mut *self);
        }
        self.mirror += 1;
        self.checksum = checksum_of(self.mirror);
    }
}

/// A checksum of `count`.
pub const fn checksum_of(count: u64) -> u64 {
    count.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555
}

/// Waits until `flag` is at least `value`; panics after [`PATIENCE`].
pub fn await_flag(flag: &AtomicU32, value: u32) {
    let reached = common::wait_until(PATIENCE, || flag.load(Ordering::Acquire) >= value);
    assert!(reached, "flag stayed below {value} for {PATIENCE:?}");
}

/// Waits until `flag` is at least `value`, in a child; false after [`PATIENCE`].
pub fn flag_reached(flag: &AtomicU32, value: u32) -> bool {
    common::wait_until(PATIENCE, || flag.load(Ordering::Acquire) >= value)
}

/// The state letter of process `pid` (field 3 of `/proc/<pid>/stat`).
pub fn proc_state(pid: libc::pid_t) -> Option<char> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).map(|&b| b as char)
}

/// Waits until `child` sleeps in the kernel: it blocked where the test expects it to.
pub fn await_sleeping(child: &Child) {
    let asleep = common::wait_until(PATIENCE, || proc_state(child.pid()) == Some('S'));
    assert!(asleep, "child {} never went to sleep", child.pid());
}

/// SIGKILLs `child` and waits until it is dead, without reaping it: it stays a zombie.
pub fn kill_leaving_zombie(child: &Child) {
    child.signal(libc::SIGKILL);
    assert!(
        child.wait_exited(PATIENCE),
        "child {} survived SIGKILL",
        child.pid()
    );
    assert_eq!(proc_state(child.pid()), Some('Z'));
}

/// Blocks forever; for a child that holds a lock until the parent kills it.
pub fn park_forever() -> ! {
    loop {
        // SAFETY: pause only waits for a signal.
        unsafe { libc::pause() };
    }
}

/// The counter the SIGUSR1 handler increments, in shared memory.
static SIGNAL_COUNTER: AtomicPtr<AtomicU32> = AtomicPtr::new(core::ptr::null_mut());

extern "C" fn count_signal(_: libc::c_int) {
    let counter = SIGNAL_COUNTER.load(Ordering::Relaxed);
    // SAFETY: set by `count_sigusr1` to a counter in a mapping that outlives the process.
    if let Some(counter) = unsafe { counter.as_ref() } {
        counter.fetch_add(1, Ordering::Release);
    }
}

/// In a child: installs a SIGUSR1 handler that counts into `counter` and is installed
/// *without* `SA_RESTART`, so blocking calls see `EINTR`.
pub fn count_sigusr1(counter: &AtomicU32) {
    SIGNAL_COUNTER.store(
        counter as *const AtomicU32 as *mut AtomicU32,
        Ordering::Relaxed,
    );
    // SAFETY: an all-zero sigaction is a valid "no flags, empty mask" value to fill in.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = count_signal as *const () as libc::sighandler_t;
    action.sa_flags = 0;
    // SAFETY: `action` is a valid sigaction; the handler only touches an atomic.
    let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, core::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction");
}

/// Sends `count` SIGUSR1s to `child` one at a time, each once the previous was handled.
pub fn pelt_with_signals(child: &Child, counter: &AtomicU32, count: u32) {
    let start = counter.load(Ordering::Acquire);
    for i in 1..=count {
        child.signal(libc::SIGUSR1);
        await_flag(counter, start + i);
    }
}
