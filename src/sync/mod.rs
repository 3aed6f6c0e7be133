//! The only door to atomics and futex calls used by the shared-memory algorithms.
//!
//! Everything that touches a shared word goes through here, so that one namespaced cfg can
//! swap these for model-checked versions.

pub(crate) use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(target_os = "linux")]
pub(crate) mod futex;
