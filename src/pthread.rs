//! The pthread backend: `ShmMutex` on a process-shared `pthread_mutex_t`, robust in shared
//! memory that shmsync maps or places.
//!
//! On Linux its `ShmCondvar` is a futex sequence counter (glibc's `pthread_cond_t` is not
//! crash-safe before glibc 2.41 and changes layout between glibc versions); on other Unixes it
//! is a process-shared `pthread_cond_t`.
//!
//! The `pthread_mutex_t` is initialised in place by the first lock in any process (a process
//! killed while doing it is taken over), so `ShmMutex::new` values need no init step.
//!
//! # Platforms
//!
//! Only Linux is tested. FreeBSD has robust mutexes, so owner death poisons there too. macOS
//! has no robust mutexes: a process that dies holding the lock leaves it locked for good and
//! nothing is poisoned; it also has no `pthread_mutex_timedlock`, so `try_lock_for` retries
//! `trylock` with short sleeps. Outside
//! glibc, timed locks take CLOCK_REALTIME and the remaining time is converted once, and
//! shmsync cannot read the robust lists: a `ShmBox` holding pthread-backend primitives keeps
//! its memory mapped when it drops, and mutexes in raw `ShmRef` placements are not robust.
//! Whether a waiter killed inside a `pthread_cond_t` wait disturbs others is up to the C
//! library.
//!
//! # Robust only where shmsync keeps the memory mapped
//!
//! glibc keeps each robust mutex a thread holds on a per-thread list linked through the
//! mutexes themselves, and writes through it; a guard leaked with `mem::forget` leaves its
//! mutex there for good, so that memory must never be freed or reused. The mutex is therefore
//! set up robust (a holder's death poisons it) only where shmsync decides when the memory
//! goes: in a [`ShmBox`](crate::ShmBox), which keeps its mapping if a robust list still
//! points into it when it drops, and in a raw [`ShmRef`](crate::ShmRef) placement
//! ([`ShmRef::init`](crate::ShmRef::init), [`ShmRef::attach`](crate::ShmRef::attach)),
//! whose drop aborts the process in that case. Anywhere else (a local variable, a `Box`,
//! memory reached through your own pointers) it is process-shared but not robust: leaking a
//! guard there is harmless, and a holder's death is not detected. A mutex first locked
//! outside shared memory and then moved into a `ShmBox` keeps that set-up. The safe
//! `ShmRef::init_in` and `attach_in` do not take pthread-backend types. The futex backend
//! has none of these rules.
//!
//! # Examples
//!
//! ```
//! use shmsync::pthread::{ShmCondvar, ShmMutex};
//! let (m, cv) = (ShmMutex::new(0u32), ShmCondvar::new());
//! *m.lock().unwrap() += 1;
//! cv.notify_all();
//! ```

use crate::backend::pthread::{RawPthreadCondvar, RawPthreadMutex};

/// A process-shared pthread mutex, robust where shmsync keeps its memory mapped (see the
/// module docs).
///
/// Its methods and trait impls are those of [`generic::ShmMutex`](crate::generic::ShmMutex),
/// written once for both backends; rustdoc lists them on this page too, under the aliased
/// type.
///
/// # Examples
///
/// ```
/// let m = shmsync::pthread::ShmMutex::new(5u32);
/// assert_eq!(*m.lock().unwrap(), 5);
/// ```
pub type ShmMutex<T> = crate::generic::ShmMutex<T, RawPthreadMutex>;
/// The guard of a pthread-backend [`ShmMutex`].
///
/// Its methods ([`map`](crate::generic::ShmMutexGuard::map),
/// [`try_map`](crate::generic::ShmMutexGuard::try_map)) and trait impls are those of
/// [`generic::ShmMutexGuard`](crate::generic::ShmMutexGuard).
///
/// # Examples
///
/// ```
/// let m = shmsync::pthread::ShmMutex::new(1u8);
/// let guard: shmsync::pthread::ShmMutexGuard<'_, u8> = m.lock().unwrap();
/// assert_eq!(*guard, 1);
/// ```
pub type ShmMutexGuard<'a, T> = crate::generic::ShmMutexGuard<'a, T, RawPthreadMutex>;
/// A pthread-backend [`ShmMutexGuard`] narrowed to a part of the value by
/// [`ShmMutexGuard::map`](crate::generic::ShmMutexGuard::map).
///
/// Its methods ([`map`](crate::generic::MappedShmMutexGuard::map),
/// [`try_map`](crate::generic::MappedShmMutexGuard::try_map)) and trait impls are those of
/// [`generic::MappedShmMutexGuard`](crate::generic::MappedShmMutexGuard).
///
/// # Examples
///
/// ```
/// use shmsync::pthread::{MappedShmMutexGuard, ShmMutex, ShmMutexGuard};
/// let m = ShmMutex::new((1u8, 2u8));
/// let second: MappedShmMutexGuard<'_, u8> = ShmMutexGuard::map(m.lock().unwrap(), |p| &mut p.1);
/// assert_eq!(*second, 2);
/// ```
pub type MappedShmMutexGuard<'a, U> =
    crate::generic::MappedShmMutexGuard<'a, U, RawPthreadMutex>;
/// The pthread backend's condition variable.
///
/// Its methods and trait impls are those of
/// [`generic::ShmCondvar`](crate::generic::ShmCondvar), written once for both backends;
/// rustdoc lists them on this page too, under the aliased type.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let (m, cv) = (shmsync::pthread::ShmMutex::new(()), shmsync::pthread::ShmCondvar::new());
/// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
/// assert!(r.timed_out());
/// ```
pub type ShmCondvar = crate::generic::ShmCondvar<RawPthreadCondvar>;
