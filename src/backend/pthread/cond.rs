//! The pthread backend's condition variable outside Linux: a process-shared `pthread_cond_t`,
//! initialised lazily in place like the mutex.
//!
//! What holds there (untested here): waits and notifications work across processes; timed
//! waits use CLOCK_MONOTONIC where `pthread_condattr_setclock` exists (FreeBSD and others),
//! and a CLOCK_REALTIME deadline converted once where it does not (macOS). Whether a waiter
//! killed inside `wait` can disturb other waiters or notifiers depends on the C library.

use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::mem::MaybeUninit;

use super::init::LazyInit;
use super::ffi::check;
use super::RawPthreadMutex;
use crate::backend::{Acquired, RawCondvar, Sealed};
use crate::sys::time::Deadline;

/// A process-shared `pthread_cond_t` with an in-place lazy initialisation word.
#[repr(C)]
pub struct RawPthreadCondvar {
    /// Whether `cond` has been initialised where it lies.
    init: LazyInit,
    /// The C condition variable; meaningful only once `init` says so.
    cond: UnsafeCell<libc::pthread_cond_t>,
}

// SAFETY: the C condition variable is process-shared and usable from any thread.
unsafe impl Send for RawPthreadCondvar {}
// SAFETY: all access goes through the pthread calls, which synchronise.
unsafe impl Sync for RawPthreadCondvar {}

// As `std::sync::Condvar`: unwinding leaves nothing half-done in the C condition variable.
impl std::panic::UnwindSafe for RawPthreadCondvar {}
impl std::panic::RefUnwindSafe for RawPthreadCondvar {}

impl Sealed for RawPthreadCondvar {}
impl crate::sync::MakeModel for RawPthreadCondvar {}

/// Whether timed waits take a CLOCK_MONOTONIC deadline (set with `pthread_condattr_setclock`).
const MONOTONIC: bool = !cfg!(target_vendor = "apple");

impl RawPthreadCondvar {
    /// The C condition variable, initialised in place first if no process has done it yet.
    fn c_cond(&self) -> *mut libc::pthread_cond_t {
        let c = self.cond.get();
        // SAFETY: `LazyInit` runs this once, while no other caller can use `c`.
        self.init.ensure(|| unsafe { cond_init(c) });
        c
    }
}

/// Initialises the condition variable at `c`: process-shared, on CLOCK_MONOTONIC if possible.
///
/// # Safety
///
/// - `c` is valid for writes of a `pthread_cond_t` that nobody else uses until this returns.
unsafe fn cond_init(c: *mut libc::pthread_cond_t) {
    let mut attr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
    // SAFETY: `attr` is writable local storage, destroyed below.
    check("pthread_condattr_init", unsafe {
        libc::pthread_condattr_init(attr.as_mut_ptr())
    });
    // SAFETY: `attr` was just initialised.
    check("pthread_condattr_setpshared", unsafe {
        libc::pthread_condattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED)
    });
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: `attr` was just initialised.
    check("pthread_condattr_setclock", unsafe {
        libc::pthread_condattr_setclock(attr.as_mut_ptr(), libc::CLOCK_MONOTONIC)
    });
    // SAFETY: `c` is writable and unused (caller's contract); `attr` is initialised.
    check("pthread_cond_init", unsafe {
        libc::pthread_cond_init(c, attr.as_ptr())
    });
    // SAFETY: `attr` is initialised and no longer needed.
    check("pthread_condattr_destroy", unsafe {
        libc::pthread_condattr_destroy(attr.as_mut_ptr())
    });
}

// SAFETY: `pthread_cond_wait`/`timedwait` return with the mutex held (0, ETIMEDOUT or
// EOWNERDEAD); the struct is repr(C) and lazily initialised in place. Whether a dead waiter
// can disturb others is up to the C library, as the module docs say.
unsafe impl RawCondvar for RawPthreadCondvar {
    type Mutex = RawPthreadMutex;
    const INIT: Self = RawPthreadCondvar {
        init: LazyInit::new(),
        cond: UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER),
    };

    unsafe fn wait(&self, mutex: &RawPthreadMutex, deadline: Option<Deadline>) -> (Acquired, bool) {
        let (c, m) = (self.c_cond(), mutex.as_ptr());
        let rc: c_int = match deadline {
            // SAFETY: both are initialised; the caller holds `m`.
            None => unsafe { libc::pthread_cond_wait(c, m) },
            Some(deadline) => {
                let ts = match MONOTONIC {
                    true => deadline.as_timespec(),
                    false => super::ffi::realtime(deadline),
                };
                // SAFETY: both are initialised; the caller holds `m`; `ts` outlives the call.
                unsafe { libc::pthread_cond_timedwait(c, m, &ts) }
            }
        };
        match mutex.reacquired("pthread_cond_wait", rc) {
            Some(acquired) => (acquired, false),
            None => (Acquired::Clean, true),
        }
    }

    // `pthread_cond_signal` and `pthread_cond_broadcast` do not say whom they woke: report
    // what the trait allows when one cannot tell.
    fn notify_one(&self) -> bool {
        // SAFETY: `c_cond` returns an initialised condition variable.
        check("pthread_cond_signal", unsafe {
            libc::pthread_cond_signal(self.c_cond())
        });
        true
    }

    fn notify_all(&self) -> usize {
        // SAFETY: `c_cond` returns an initialised condition variable.
        check("pthread_cond_broadcast", unsafe {
            libc::pthread_cond_broadcast(self.c_cond())
        });
        0
    }
}

// SAFETY: as for the mutex: a zero init word means "not initialised yet", and the first use
// initialises the C bytes in place, ignoring what they held.
unsafe impl crate::ShmZeroable for crate::generic::ShmCondvar<RawPthreadCondvar> {}
