//! The pthread backend: `ShmMutex` on a robust, process-shared `pthread_mutex_t`.
//!
//! On Linux its `ShmCondvar` is a futex sequence counter (glibc's `pthread_cond_t` is not
//! crash-safe before glibc 2.41 and changes layout between glibc versions); on other Unixes it
//! is a process-shared `pthread_cond_t`.
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
pub type ShmMutex<T> = crate::generic::ShmMutex<T, RawPthreadMutex>;
/// The guard of a pthread-backend [`ShmMutex`].
pub type ShmMutexGuard<'a, T> = crate::generic::ShmMutexGuard<'a, T, RawPthreadMutex>;
/// The pthread backend's condition variable; see
/// [`generic::ShmCondvar`](crate::generic::ShmCondvar).
pub type ShmCondvar = crate::generic::ShmCondvar<RawPthreadCondvar>;
