//! The C library calls behind the pthread backend: attribute set-up, timed locking on each
//! platform, and the checks on their return codes.

use core::ffi::c_int;
use core::mem::MaybeUninit;

use crate::sys::time::Deadline;

/// Panics with the operation's name unless `rc` is 0: an error here means a bug in the crate
/// (or memory that no longer holds what it should).
#[track_caller]
pub(crate) fn check(op: &str, rc: c_int) {
    if rc != 0 {
        crate::sys::error::bug(op, rc);
    }
}

/// What a mutex is set up as, beyond process-shared and of the normal type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MutexAttrs {
    /// `PTHREAD_MUTEX_ROBUST`: the next locker after a holder's death gets `EOWNERDEAD`.
    pub(crate) robust: bool,
    /// `PTHREAD_PRIO_INHERIT`: a holder runs at the priority of its highest waiter.
    pub(crate) prio_inherit: bool,
}

/// Whether this platform has robust mutexes.
pub(crate) const HAS_ROBUST: bool = cfg!(any(target_os = "linux", target_os = "freebsd"));

/// A failed pthread call: its name and result code.
pub(crate) type Failed = (&'static str, c_int);

/// `Err((op, rc))` unless `rc` is 0.
fn ok(op: &'static str, rc: c_int) -> Result<(), Failed> {
    if rc == 0 {
        Ok(())
    } else {
        Err((op, rc))
    }
}

/// Initialises `attr` for a mutex in shared memory: process-shared, of the normal type
/// (relocking from the holder deadlocks, as with `std::sync::Mutex`; no owner check across PID
/// namespaces), robust when asked and the platform has robust mutexes, with priority
/// inheritance when asked.
///
/// # Safety
///
/// - `attr` is valid for writes of a `pthread_mutexattr_t`; whatever it held is forgotten.
/// - The caller destroys it with `pthread_mutexattr_destroy` when done, even on an error
///   after the first call.
pub(crate) unsafe fn mutex_attr_init(
    attr: *mut libc::pthread_mutexattr_t,
    attrs: MutexAttrs,
) -> Result<(), Failed> {
    // SAFETY: `attr` is writable (caller's contract).
    ok("pthread_mutexattr_init", unsafe {
        libc::pthread_mutexattr_init(attr)
    })?;
    // SAFETY: `attr` was just initialised.
    ok("pthread_mutexattr_setpshared", unsafe {
        libc::pthread_mutexattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED)
    })?;
    // SAFETY: `attr` was just initialised.
    ok("pthread_mutexattr_settype", unsafe {
        libc::pthread_mutexattr_settype(attr, libc::PTHREAD_MUTEX_NORMAL)
    })?;
    if attrs.robust {
        // SAFETY: `attr` was just initialised.
        unsafe { set_robust(attr) }?;
    }
    if attrs.prio_inherit {
        // SAFETY: `attr` was just initialised.
        ok("pthread_mutexattr_setprotocol", unsafe {
            libc::pthread_mutexattr_setprotocol(attr, libc::PTHREAD_PRIO_INHERIT)
        })?;
    }
    Ok(())
}

/// Marks `attr` robust: the next locker after a holder's death gets `EOWNERDEAD`.
///
/// # Safety
///
/// - `attr` is an initialised `pthread_mutexattr_t`.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
unsafe fn set_robust(attr: *mut libc::pthread_mutexattr_t) -> Result<(), Failed> {
    // SAFETY: `attr` is initialised (caller's contract).
    ok("pthread_mutexattr_setrobust", unsafe {
        libc::pthread_mutexattr_setrobust(attr, libc::PTHREAD_MUTEX_ROBUST)
    })
}

/// This platform has no robust mutexes (macOS among others): a holder's death leaves the
/// mutex locked.
///
/// # Safety
///
/// - `attr` is an initialised `pthread_mutexattr_t`.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
unsafe fn set_robust(_attr: *mut libc::pthread_mutexattr_t) -> Result<(), Failed> {
    Ok(())
}

/// Initialises the mutex at `m` with [`mutex_attr_init`]'s attributes; an error names the
/// call that failed.
///
/// # Safety
///
/// - `m` is valid for writes of a `pthread_mutex_t` that nobody else uses until this returns.
/// - When `attrs.robust` is set, `m` stays mapped while a thread's robust list may point into
///   it (see `region::zones`).
pub(crate) unsafe fn try_mutex_init(
    m: *mut libc::pthread_mutex_t,
    attrs: MutexAttrs,
) -> Result<(), Failed> {
    let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: `attr` is writable local storage, destroyed below.
    let set_up = unsafe { mutex_attr_init(attr.as_mut_ptr(), attrs) };
    let done = match set_up {
        // SAFETY: `m` is writable and unused (caller's contract); `attr` is initialised.
        Ok(()) => ok("pthread_mutex_init", unsafe {
            libc::pthread_mutex_init(m, attr.as_ptr())
        }),
        Err(failed) => Err(failed),
    };
    // SAFETY: `attr` was initialised (`pthread_mutexattr_init` cannot fail on glibc or
    // FreeBSD's libc, and the set-up stops before any other call otherwise) and is no longer
    // needed.
    unsafe { libc::pthread_mutexattr_destroy(attr.as_mut_ptr()) };
    done
}

/// Initialises the mutex at `m` for the pthread backend: process-shared, robust when `robust`
/// is set. An error here is a bug.
///
/// # Safety
///
/// - As for [`try_mutex_init`].
pub(super) unsafe fn mutex_init(m: *mut libc::pthread_mutex_t, robust: bool) {
    let attrs = MutexAttrs {
        robust,
        prio_inherit: false,
    };
    // SAFETY: the caller's contract is `try_mutex_init`'s.
    if let Err((op, rc)) = unsafe { try_mutex_init(m, attrs) } {
        crate::sys::error::bug(op, rc);
    }
}

/// Marks a mutex whose previous holder died consistent again, so it stays usable.
///
/// # Safety
///
/// - `m` is an initialised robust mutex that the calling thread got with `EOWNERDEAD`.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub(crate) unsafe fn mutex_consistent(m: *mut libc::pthread_mutex_t) {
    // SAFETY: `m` is initialised and held by this thread after EOWNERDEAD (caller's contract).
    check("pthread_mutex_consistent", unsafe {
        libc::pthread_mutex_consistent(m)
    });
}

/// Never called: without robust mutexes no lock call returns `EOWNERDEAD`.
///
/// # Safety
///
/// - `m` is an initialised mutex that the calling thread holds.
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub(crate) unsafe fn mutex_consistent(_m: *mut libc::pthread_mutex_t) {}

/// The name of the call behind [`mutex_lock_until`], for messages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) const LOCK_UNTIL: &str = "pthread_mutex_clocklock";
/// The name of the call behind [`mutex_lock_until`], for messages.
#[cfg(not(any(all(target_os = "linux", target_env = "gnu"), target_vendor = "apple")))]
pub(crate) const LOCK_UNTIL: &str = "pthread_mutex_timedlock";
/// The name of the call behind [`mutex_lock_until`], for messages.
#[cfg(target_vendor = "apple")]
pub(crate) const LOCK_UNTIL: &str = "pthread_mutex_trylock";

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// `pthread_mutex_timedlock` on a chosen clock (glibc 2.30 and later). The `libc` crate
    /// does not declare it.
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> c_int;
}

/// Locks `m`, giving up at `deadline` (CLOCK_MONOTONIC); returns the pthread result code
/// (`ETIMEDOUT` when the deadline passed).
///
/// # Safety
///
/// - `m` is an initialised mutex.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) unsafe fn mutex_lock_until(m: *mut libc::pthread_mutex_t, deadline: Deadline) -> c_int {
    let ts = deadline.as_timespec();
    loop {
        // SAFETY: `m` is initialised (caller's contract); `ts` outlives the call.
        let rc = unsafe { pthread_mutex_clocklock(m, libc::CLOCK_MONOTONIC, &ts) };
        // POSIX forbids EINTR here; retrying with the same absolute deadline is harmless.
        if rc != libc::EINTR {
            return rc;
        }
    }
}

/// Locks `m`, giving up at `deadline`; `pthread_mutex_timedlock` takes CLOCK_REALTIME, so the
/// time left is converted once (a wall-clock jump during the wait shifts the deadline).
///
/// # Safety
///
/// - `m` is an initialised mutex.
#[cfg(not(any(all(target_os = "linux", target_env = "gnu"), target_vendor = "apple")))]
pub(crate) unsafe fn mutex_lock_until(m: *mut libc::pthread_mutex_t, deadline: Deadline) -> c_int {
    let ts = realtime(deadline);
    loop {
        // SAFETY: `m` is initialised (caller's contract); `ts` outlives the call.
        let rc = unsafe { libc::pthread_mutex_timedlock(m, &ts) };
        if rc != libc::EINTR {
            return rc;
        }
    }
}

/// Locks `m`, giving up at `deadline`. macOS has no `pthread_mutex_timedlock`, so this retries
/// `pthread_mutex_trylock` with sleeps growing up to 1 ms.
///
/// # Safety
///
/// - `m` is an initialised mutex.
#[cfg(target_vendor = "apple")]
pub(crate) unsafe fn mutex_lock_until(m: *mut libc::pthread_mutex_t, deadline: Deadline) -> c_int {
    let mut pause = core::time::Duration::from_micros(10);
    loop {
        // SAFETY: `m` is initialised (caller's contract).
        let rc = unsafe { libc::pthread_mutex_trylock(m) };
        if rc != libc::EBUSY {
            return rc;
        }
        if deadline.passed() {
            return libc::ETIMEDOUT;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(core::time::Duration::from_millis(1));
    }
}

/// `deadline` (CLOCK_MONOTONIC) as a CLOCK_REALTIME time, for calls that only take that.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn realtime(deadline: Deadline) -> libc::timespec {
    const NANOS: i128 = 1_000_000_000;
    let nanos = |ts: libc::timespec| ts.tv_sec as i128 * NANOS + ts.tv_nsec as i128;
    let left = (nanos(deadline.as_timespec()) - nanos(Deadline::now().as_timespec())).max(0);
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_REALTIME always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_REALTIME) failed");
    let at = nanos(now) + left;
    libc::timespec {
        // Past 2038 on a 32-bit time_t: the latest time it can say.
        tv_sec: (at / NANOS).try_into().unwrap_or(i32::MAX.into()),
        tv_nsec: (at % NANOS) as _,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Reads one attribute back from an attribute object set up by `mutex_attr_init`.
    fn read_back(
        robust: bool,
        get: unsafe extern "C" fn(*const libc::pthread_mutexattr_t, *mut c_int) -> c_int,
    ) -> c_int {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        let attrs = MutexAttrs {
            robust,
            prio_inherit: false,
        };
        // SAFETY: `attr` is writable local storage, destroyed below.
        unsafe { mutex_attr_init(attr.as_mut_ptr(), attrs) }.unwrap();
        let mut value = -1;
        // SAFETY: `attr` is initialised; `value` is writable.
        check("pthread_mutexattr_get*", unsafe {
            get(attr.as_ptr(), &mut value)
        });
        // SAFETY: `attr` is initialised and no longer needed.
        check("pthread_mutexattr_destroy", unsafe {
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr())
        });
        value
    }

    #[test]
    fn attributes_are_process_shared_and_robust_only_when_asked() {
        for robust in [true, false] {
            assert_eq!(
                read_back(robust, libc::pthread_mutexattr_getpshared),
                libc::PTHREAD_PROCESS_SHARED
            );
        }
        assert_eq!(
            read_back(true, libc::pthread_mutexattr_getrobust),
            libc::PTHREAD_MUTEX_ROBUST
        );
        assert_eq!(
            read_back(false, libc::pthread_mutexattr_getrobust),
            libc::PTHREAD_MUTEX_STALLED
        );
    }
}
