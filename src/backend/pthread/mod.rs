//! The pthread backend: a process-shared (where it matters, robust) `pthread_mutex_t`,
//! initialised lazily in place.
//!
//! [`RawPthreadMutex`] holds a 32-bit [`LazyInit`] word and a `pthread_mutex_t`. Its `INIT`
//! value is all zeros on glibc and needs no init step: the first lock in any process runs
//! `pthread_mutex_init` (`PTHREAD_PROCESS_SHARED`, and `PTHREAD_MUTEX_ROBUST` only in memory
//! that shmsync keeps mapped while a robust list may point into it: see [`robust_at`]) where
//! the mutex lies, and a process killed during that step is taken over (see [`init`]). Owner
//! death is the C library's robust-mutex protocol: the next locker gets `EOWNERDEAD`, marks
//! the mutex consistent at once and reports [`Acquired::OwnerDied`], which the generic layer
//! records as shared poison; so `ENOTRECOVERABLE` cannot happen.
//!
//! The condition variable ([`RawPthreadCondvar`]) is, on Linux, the futex sequence counter of
//! [`seq_condvar`](crate::backend::seq_condvar): glibc's `pthread_cond_t` hangs signallers
//! after a waiter dies before glibc 2.41, and its layout changed in glibc 2.25 and 2.41.
//!
//! Other Unixes: this backend builds there, but only Linux is tested. FreeBSD has robust
//! mutexes; macOS (and most other Unixes) has none, so there a holder's death leaves the
//! mutex locked for good, and macOS has no `pthread_mutex_timedlock`, so `try_lock_until`
//! retries `trylock` with short sleeps. Timed locks outside glibc take CLOCK_REALTIME, so the
//! time left is converted once. The condition variable there is a process-shared
//! `pthread_cond_t` (see `cond.rs`).

use core::cell::UnsafeCell;
use core::ffi::c_int;

use crate::backend::{Acquired, BackendId, LockOwner, RawMutex, Sealed};
use crate::sys::time::Deadline;

#[cfg(not(target_os = "linux"))]
mod cond;
pub(crate) mod init;
pub(crate) mod ffi;

use init::LazyInit;

/// A process-shared (and, where shmsync keeps its memory mapped, robust) `pthread_mutex_t`
/// with an in-place lazy initialisation word.
///
/// The mutex is of the normal type: relocking it from the holding thread deadlocks, as
/// `std::sync::Mutex` may.
#[repr(C)]
pub struct RawPthreadMutex {
    /// Whether `mutex` has been initialised where it lies.
    init: LazyInit,
    /// The C mutex; meaningful only once `init` says so.
    mutex: UnsafeCell<libc::pthread_mutex_t>,
}

// Pinned layouts: a change is a change of the shared format.
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
const _: () = assert!(
    core::mem::size_of::<libc::pthread_mutex_t>() == 40
        && core::mem::size_of::<RawPthreadMutex>() == 48
        && core::mem::align_of::<RawPthreadMutex>() == 8
);
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "aarch64"))]
const _: () = assert!(
    core::mem::size_of::<libc::pthread_mutex_t>() == 48
        && core::mem::size_of::<RawPthreadMutex>() == 56
        && core::mem::align_of::<RawPthreadMutex>() == 8
);

// SAFETY: the C mutex is process-shared and designed to be used from any thread; it holds no
// process-local handle (on FreeBSD the slot is keyed by the shared page, not dereferenced).
unsafe impl Send for RawPthreadMutex {}
// SAFETY: all access to the C mutex goes through the pthread calls, which synchronise; the
// init word is atomic.
unsafe impl Sync for RawPthreadMutex {}

impl Sealed for RawPthreadMutex {}
impl crate::sync::MakeModel for RawPthreadMutex {}

impl RawPthreadMutex {
    /// The C mutex, initialised in place first if no process has done it yet.
    #[inline]
    fn c_mutex(&self) -> *mut libc::pthread_mutex_t {
        let m = self.mutex.get();
        // SAFETY: `LazyInit` runs this once, while no other caller can use `m` (they wait
        // for READY), and `m` points to this struct's own storage; `robust_at` says whether
        // that storage stays mapped while a robust list points into it.
        self.init
            .ensure(|| unsafe { ffi::mutex_init(m, robust_at(m)) });
        m
    }

    /// [`c_mutex`](Self::c_mutex) for the timed calls: `None` when another, live process is
    /// still initialising the C mutex at `deadline` (it may be stopped there). The deadline is
    /// asked for only then, so an initialised mutex costs no clock read.
    #[inline]
    fn c_mutex_by(
        &self,
        deadline: impl FnOnce() -> Deadline,
    ) -> Option<*mut libc::pthread_mutex_t> {
        let m = self.mutex.get();
        // SAFETY: as in `c_mutex`.
        let ready = self
            .init
            .ensure_until(|| unsafe { ffi::mutex_init(m, robust_at(m)) }, deadline);
        ready.then_some(m)
    }

    /// Maps the result code of a lock call: 0 and `EOWNERDEAD` mean held, `busy` (EBUSY or
    /// ETIMEDOUT) means not held; anything else is a bug and panics with `op`.
    #[inline]
    fn acquired(&self, op: &str, rc: c_int, busy: c_int) -> Option<Acquired> {
        match rc {
            0 => Some(Acquired::Clean),
            libc::EOWNERDEAD => Some(self.recover()),
            rc if rc == busy => None,
            rc => lock_failed(op, rc),
        }
    }

    /// After `EOWNERDEAD`: marks the mutex consistent, so it stays usable, and reports the
    /// death (the generic layer turns it into poison).
    #[cold]
    fn recover(&self) -> Acquired {
        // SAFETY: the mutex is initialised and this thread just got it with EOWNERDEAD.
        unsafe { ffi::mutex_consistent(self.mutex.get()) };
        Acquired::OwnerDied
    }

    /// The shared `pthread_mutex_t`, for the condition variable on non-Linux Unixes.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn as_ptr(&self) -> *mut libc::pthread_mutex_t {
        self.c_mutex()
    }

    /// Maps a condition-variable wait's result code, as for a lock (`busy` is `ETIMEDOUT`).
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn reacquired(&self, op: &str, rc: c_int) -> Option<Acquired> {
        self.acquired(op, rc, libc::ETIMEDOUT)
    }
}

/// Whether a mutex initialised at `m` may be robust: only in memory that shmsync keeps mapped
/// while a thread's robust list may point into it (a `ShmBox`, a raw `ShmRef` placement).
/// Anywhere else (the stack, the heap, memory reached through the caller's own pointers) a
/// leaked guard would leave glibc's list pointing into memory that may be freed and reused;
/// there the mutex is process-shared but not robust, so a holder's death is not detected —
/// which matters only across processes, and memory private to a process dies with it. Asked
/// once per mutex, when it is initialised.
#[cold]
fn robust_at(m: *mut libc::pthread_mutex_t) -> bool {
    crate::region::zones::contains(m as usize)
}

/// Panics for a lock call's unexpected result code.
#[cold]
#[track_caller]
fn lock_failed(op: &str, rc: c_int) -> ! {
    if rc == libc::ENOTRECOVERABLE {
        panic!(
            "{op}: the mutex is not recoverable (ENOTRECOVERABLE): a holder died and the next \
             one unlocked it without pthread_mutex_consistent; shmsync always marks it \
             consistent, so foreign code uses this mutex or its memory was overwritten"
        );
    }
    crate::sys::error::bug(op, rc)
}

// SAFETY: every `Some` comes from a successful pthread lock call (0 or EOWNERDEAD) on a mutex
// initialised PTHREAD_PROCESS_SHARED, so the caller holds it across processes. The struct is
// repr(C), holds no pointer, and INIT is UNINIT, which any process initialises in place on
// first use. Robustness (where the platform has it) turns a holder's death into EOWNERDEAD
// for the next locker, reported as OwnerDied.
unsafe impl RawMutex for RawPthreadMutex {
    const ID: BackendId = BackendId::Pthread;
    const INIT: Self = RawPthreadMutex {
        init: LazyInit::new(),
        mutex: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    };

    #[inline]
    fn lock(&self) -> Acquired {
        let m = self.c_mutex();
        // SAFETY: `m` is initialised by `c_mutex`.
        let rc = unsafe { libc::pthread_mutex_lock(m) };
        match self.acquired("pthread_mutex_lock", rc, 0) {
            Some(acquired) => acquired,
            None => unreachable!("pthread_mutex_lock returned without the lock"),
        }
    }

    #[inline]
    fn try_lock(&self) -> Option<Acquired> {
        let m = self.c_mutex_by(Deadline::now)?;
        // SAFETY: `m` is initialised by `c_mutex_by`.
        let rc = unsafe { libc::pthread_mutex_trylock(m) };
        self.acquired("pthread_mutex_trylock", rc, libc::EBUSY)
    }

    fn try_lock_until(&self, deadline: Deadline) -> Option<Acquired> {
        let m = self.c_mutex_by(|| deadline)?;
        // SAFETY: `m` is initialised by `c_mutex_by`.
        let rc = unsafe { ffi::mutex_lock_until(m, deadline) };
        self.acquired(ffi::LOCK_UNTIL, rc, libc::ETIMEDOUT)
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock, so the mutex is initialised and ours to unlock.
        let rc = unsafe { libc::pthread_mutex_unlock(self.mutex.get()) };
        ffi::check("pthread_mutex_unlock", rc);
    }

    fn owner(&self) -> Option<LockOwner> {
        if !self.init.is_ready() {
            return None;
        }
        owner_of(self.mutex.get())
    }
}

/// Reads who holds a glibc mutex from its first words: the lock word (`__lock`: 0 when free;
/// for a robust mutex the owner's TID, with `FUTEX_OWNER_DIED` set by the kernel when the
/// owner died) and the owner's TID (`__owner`, the third `int`). These are part of glibc's
/// ABI with the kernel's robust-futex protocol and have kept their places in every glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn owner_of(mutex: *mut libc::pthread_mutex_t) -> Option<LockOwner> {
    use crate::sync::native::AtomicU32;
    use crate::sync::Ordering;
    /// The kernel's mark on the robust futex word of a thread that died holding it
    /// (`linux/futex.h`).
    const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    const _: () = assert!(core::mem::size_of::<libc::pthread_mutex_t>() >= 12);
    let words = mutex.cast::<AtomicU32>();
    // SAFETY: the mutex is initialised (READY was read with Acquire), 4-aligned, and at least
    // 12 bytes long; other processes change these words only with atomic operations (the
    // kernel and glibc), and reading them as atomics changes nothing.
    let (lock, tid) = unsafe {
        (
            (*words).load(Ordering::Relaxed),
            (*words.add(2)).load(Ordering::Relaxed),
        )
    };
    if lock == 0 {
        return None;
    }
    // glibc marks a mutex whose state is being repaired with INT_MAX.
    let pid = (tid != 0 && tid < i32::MAX as u32).then_some(tid);
    Some(LockOwner::new(pid, lock & FUTEX_OWNER_DIED != 0))
}

/// Other C libraries keep the owner where shmsync does not look: nothing can be told.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn owner_of(_mutex: *mut libc::pthread_mutex_t) -> Option<LockOwner> {
    None
}

// SAFETY: a zero init word is `EMPTY`, "not initialised yet": the first lock in any process
// runs `pthread_mutex_init` in place and ignores the C bytes until then, so an all-zero mutex
// behaves as `INIT` (whose C bytes are `PTHREAD_MUTEX_INITIALIZER`, all zero on glibc too)
// on every platform; `pthread_mutex_t` is plain integers to Rust, so its zero bytes are a
// valid value. A zero poison word is "not poisoned".
unsafe impl<T: crate::ShmZeroable> crate::ShmZeroable
    for crate::generic::ShmMutex<T, RawPthreadMutex>
{
}

/// The pthread backend's condition variable on Linux: a futex sequence counter, safe when a
/// waiter dies and independent of the glibc version.
#[cfg(target_os = "linux")]
pub type RawPthreadCondvar = crate::backend::seq_condvar::SeqCondvar<RawPthreadMutex>;

#[cfg(not(target_os = "linux"))]
pub use cond::RawPthreadCondvar;

#[cfg(test)]
mod tests;
