//! Shared (never `FUTEX_PRIVATE_FLAG`) futex wait and wake on a 32-bit word.
//!
//! The words live in memory mapped by several processes, and a private futex is keyed on
//! (mm, address): its wakes never reach another process. Timed waits use
//! `FUTEX_WAIT_BITSET`, whose timeout is an absolute CLOCK_MONOTONIC time.

use crate::sync::native::AtomicU32;
use crate::sync::Wake;
use crate::sys::time::Deadline;

/// Sleeps while `word` holds `expected`, until woken or until `deadline` (absolute,
/// CLOCK_MONOTONIC). Returns early on a signal or a spurious wake: callers re-check their
/// condition and call again with the same deadline.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> Wake {
    wait_tagged(word, expected, deadline, ANY_TAG)
}

/// Every tag: what [`wait`] sleeps with, and what plain wakes match.
pub(crate) const ANY_TAG: u32 = libc::FUTEX_BITSET_MATCH_ANY as u32;

/// [`wait`], sleeping with the tags `tag` (a nonzero futex bitset): [`wake_tagged`] wakes
/// only sleepers whose tags it names; [`wake`] wakes any sleeper.
pub(crate) fn wait_tagged(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Deadline>,
    tag: u32,
) -> Wake {
    let ts = deadline.map(Deadline::as_timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32; `ts_ptr` is null or points to a timespec that
    // outlives the call; FUTEX_WAIT_BITSET reads both and writes neither.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            ts_ptr,
            core::ptr::null::<u32>(),
            tag,
        )
    };
    if rc == 0 {
        return Wake::Woken;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ETIMEDOUT) => Wake::TimedOut,
        Some(libc::EAGAIN) | Some(libc::EINTR) => Wake::Early,
        other => crate::sys::error::bug("futex(FUTEX_WAIT_BITSET)", other.unwrap_or(0)),
    }
}

/// Wakes up to `count` waiters of `word`; returns how many were woken.
///
/// The kernel uses the address only as a key and never writes through it. `EFAULT` (the
/// page is no longer mapped) counts as "nobody woken": a wake that trails a release can never
/// corrupt memory, whatever happened to the mapping after the release.
pub(crate) fn wake(word: &AtomicU32, count: i32) -> usize {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it reads and writes no memory.
    let rc = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count) };
    woken("futex(FUTEX_WAKE)", rc)
}

/// Wakes one waiter of `word`; returns whether one was woken.
#[cfg_attr(shmsync_loom, allow(dead_code))]
#[inline]
pub(crate) fn wake_one(word: &AtomicU32) -> bool {
    wake(word, 1) > 0
}

/// Wakes every waiter of `word`; returns how many were woken.
#[inline]
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX)
}

/// Wakes up to `count` sleepers of `word` that sleep with one of the tags `tag` (see
/// [`wait_tagged`]); returns how many were woken. `EFAULT` counts as nobody, as for [`wake`].
#[cfg_attr(shmsync_loom, allow(dead_code))]
pub(crate) fn wake_tagged(word: &AtomicU32, count: i32, tag: u32) -> usize {
    // SAFETY: FUTEX_WAKE_BITSET only uses the address as a key; it reads and writes no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE_BITSET,
            count,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            tag,
        )
    };
    woken("futex(FUTEX_WAKE_BITSET)", rc)
}

/// What a wake system call's result `rc` says about how many it woke; `EFAULT` is nobody.
fn woken(call: &str, rc: libc::c_long) -> usize {
    if rc >= 0 {
        return rc as usize;
    }
    let err = std::io::Error::last_os_error();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EFAULT),
        "{call} failed: {err}"
    );
    0
}
