//! The pthread backend: `ShmMutex` on a robust, process-shared `pthread_mutex_t`.
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
//! glibc, timed locks take CLOCK_REALTIME and the remaining time is converted once. Whether a
//! waiter killed inside a `pthread_cond_t` wait disturbs others is up to the C library.
//!
//! # Leaked guards
//!
//! glibc keeps each robust mutex a thread holds on a per-thread list linked through the
//! mutexes themselves, and writes through it. A guard leaked with `mem::forget` leaves its
//! mutex on that list, so the mutex's memory must stay put: a [`ShmBox`](crate::ShmBox)
//! holding pthread-backend primitives checks the lists when it drops and keeps its memory
//! mapped if any entry points into it. A pthread `ShmMutex` elsewhere (a local variable, a
//! `Box`, memory placed with [`ShmRef`](crate::ShmRef)) must not be moved or freed while a
//! leaked guard holds it. The futex backend has no such rule.
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

/// A process-shared robust pthread mutex; see [`generic::ShmMutex`](crate::generic::ShmMutex).
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
/// # Examples
///
/// ```
/// let m = shmsync::pthread::ShmMutex::new(1u8);
/// let guard: shmsync::pthread::ShmMutexGuard<'_, u8> = m.lock().unwrap();
/// assert_eq!(*guard, 1);
/// ```
pub type ShmMutexGuard<'a, T> = crate::generic::ShmMutexGuard<'a, T, RawPthreadMutex>;
/// The pthread backend's condition variable; see
/// [`generic::ShmCondvar`](crate::generic::ShmCondvar).
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
