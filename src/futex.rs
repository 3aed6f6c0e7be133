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

/// A process-shared mutex on a futex word; see [`generic::ShmMutex`](crate::generic::ShmMutex).
pub type ShmMutex<T> = crate::generic::ShmMutex<T, RawFutexMutex>;
/// The guard of a futex-backend [`ShmMutex`].
pub type ShmMutexGuard<'a, T> = crate::generic::ShmMutexGuard<'a, T, RawFutexMutex>;
/// A process-shared condition variable on a futex sequence counter; see
/// [`generic::ShmCondvar`](crate::generic::ShmCondvar).
pub type ShmCondvar = crate::generic::ShmCondvar<RawFutexCondvar>;
