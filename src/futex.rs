//! The futex backend (Linux): `ShmMutex` and `ShmCondvar` on shared futex words, with
//! owner-death detection. The default backend on Linux.
//!
//! # Examples
//!
//! ```
//! use shmsync::futex::{ShmCondvar, ShmMutex};
//! let (m, cv) = (ShmMutex::new(0u32), ShmCondvar::new());
//! *m.lock().unwrap() += 1;
//! cv.notify_all();
//! ```

use crate::backend::futex::{RawFutexCondvar, RawFutexMutex};

/// A process-shared mutex on a futex word.
///
/// Its methods and trait impls are those of [`generic::ShmMutex`](crate::generic::ShmMutex),
/// written once for both backends; rustdoc lists them on this page too, under the aliased
/// type.
///
/// # Examples
///
/// ```
/// let m = shmsync::futex::ShmMutex::new(5u32);
/// assert_eq!(*m.lock().unwrap(), 5);
/// ```
pub type ShmMutex<T> = crate::generic::ShmMutex<T, RawFutexMutex>;
/// The guard of a futex-backend [`ShmMutex`].
///
/// Its methods ([`map`](crate::generic::ShmMutexGuard::map),
/// [`try_map`](crate::generic::ShmMutexGuard::try_map)) and trait impls are those of
/// [`generic::ShmMutexGuard`](crate::generic::ShmMutexGuard).
///
/// # Examples
///
/// ```
/// let m = shmsync::futex::ShmMutex::new(1u8);
/// let guard: shmsync::futex::ShmMutexGuard<'_, u8> = m.lock().unwrap();
/// assert_eq!(*guard, 1);
/// ```
pub type ShmMutexGuard<'a, T> = crate::generic::ShmMutexGuard<'a, T, RawFutexMutex>;
/// A futex-backend [`ShmMutexGuard`] narrowed to a part of the value by
/// [`ShmMutexGuard::map`](crate::generic::ShmMutexGuard::map).
///
/// Its methods ([`map`](crate::generic::MappedShmMutexGuard::map),
/// [`try_map`](crate::generic::MappedShmMutexGuard::try_map)) and trait impls are those of
/// [`generic::MappedShmMutexGuard`](crate::generic::MappedShmMutexGuard).
///
/// # Examples
///
/// ```
/// use shmsync::futex::{MappedShmMutexGuard, ShmMutex, ShmMutexGuard};
/// let m = ShmMutex::new((1u8, 2u8));
/// let second: MappedShmMutexGuard<'_, u8> = ShmMutexGuard::map(m.lock().unwrap(), |p| &mut p.1);
/// assert_eq!(*second, 2);
/// ```
pub type MappedShmMutexGuard<'a, U> = crate::generic::MappedShmMutexGuard<'a, U, RawFutexMutex>;
/// A process-shared condition variable on a futex sequence counter.
///
/// Its methods and trait impls are those of
/// [`generic::ShmCondvar`](crate::generic::ShmCondvar), written once for both backends;
/// rustdoc lists them on this page too, under the aliased type.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let (m, cv) = (shmsync::futex::ShmMutex::new(()), shmsync::futex::ShmCondvar::new());
/// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
/// assert!(r.timed_out());
/// ```
pub type ShmCondvar = crate::generic::ShmCondvar<RawFutexCondvar>;

/// Hooks for this crate's own tests: read and forge the lock words of a futex mutex. Not part
/// of the API (only the `test-hooks` feature, which this crate's tests turn on, has them);
/// forging a word breaks the mutex's guarantees.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod __test_hooks {
    use super::{ShmCondvar, ShmMutex, ShmMutexGuard};
    use crate::backend::futex;

    /// The flag set in the lock word while a locker may sleep.
    pub const CONTENDED: u32 = futex::RawFutexMutex::CONTENDED_BIT;

    /// The liveness token the calling process writes into lock words.
    pub fn my_token() -> u32 {
        futex::RawFutexMutex::my_token()
    }

    /// The lock word and the PID word of `m`.
    pub fn state<T>(m: &ShmMutex<T>) -> (u32, u32) {
        m.raw_lock().raw_state()
    }

    /// Overwrites the lock word and the PID word of `m`.
    pub fn forge<T>(m: &ShmMutex<T>, word: u32, pid: u32) {
        m.raw_lock().forge_state(word, pid)
    }

    /// Waits on `cv` as [`ShmCondvar::wait`] does, but once woken runs `then` instead of
    /// re-taking the mutex, which stays unlocked: the models pass `shmsync::loom::die`, a
    /// waiter killed after a notification woke it and before it re-locked.
    pub fn wait_woken_then<T>(cv: &ShmCondvar, guard: ShmMutexGuard<'_, T>, then: impl FnOnce()) {
        let mutex = guard.leak();
        // SAFETY: the leaked guard held the mutex, so this thread holds it; no guard owns it
        // afterwards, and nothing re-locks it.
        unsafe { cv.raw().release_and_sleep(mutex.raw_lock(), None) };
        then();
    }

    /// Seeds a bug for the loom models to catch, in every condvar of the process: a
    /// `notify_one` that leaves sleepers behind does not wake the untimed ones.
    pub fn seed_no_herd_bug(on: bool) {
        crate::backend::seq_condvar::SKIP_HERD.set(on)
    }
}
