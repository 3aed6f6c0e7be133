//! Process-shared synchronization primitives that survive crashed processes.
//!
//! `shmsync` puts a [`ShmMutex`] and a [`ShmCondvar`] with `std::sync`'s API into memory that
//! several processes map, and gives that memory a type: [`ShmBox<T>`] holds a `T` in an
//! anonymous mapping shared with forked children, a POSIX named segment, or a System V
//! segment, and [`ShmRef`] places one into memory the application already maps. [`ShmSafe`]
//! decides at compile time what may live there.
//!
//! # Examples
//!
//! ```
//! use shmsync::{ShmBox, ShmMutex, ShmSafe};
//!
//! #[derive(ShmSafe)]
//! #[repr(C)]
//! struct Totals {
//!     count: u64,
//!     sum: u64,
//! }
//!
//! let shared = ShmBox::new(ShmMutex::new(Totals { count: 0, sum: 0 })).unwrap();
//! // fork() here: the children share `shared` with the parent.
//! let mut totals = shared.lock().unwrap();
//! totals.count += 1;
//! totals.sum += 42;
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod backend;
mod condvar;
mod mutex;
mod region;
mod shm_safe;
mod sync;
mod sys;

#[cfg(target_os = "linux")]
pub mod futex;
pub mod pthread;

/// The backend-generic types behind the per-backend aliases
/// ([`futex`], [`pthread`]) and the crate-level defaults.
pub mod generic {
    pub use crate::backend::{Acquired, RawCondvar, RawMutex};
    pub use crate::condvar::ShmCondvar;
    pub use crate::mutex::{ShmMutex, ShmMutexGuard};
    pub use crate::sys::time::Deadline;
}

pub use backend::BackendId;
pub use condvar::WaitTimeoutResult;
pub use region::{ShmBox, ShmOptions, ShmRef, SysvKey};
pub use shm_safe::ShmSafe;
pub use shmsync_derive::ShmSafe;

#[cfg(target_os = "linux")]
pub use futex::{ShmCondvar, ShmMutex, ShmMutexGuard};
#[cfg(not(target_os = "linux"))]
pub use pthread::{ShmCondvar, ShmMutex, ShmMutexGuard};

#[doc(hidden)]
pub mod __private {
    pub use crate::shm_safe::fingerprint;
}
