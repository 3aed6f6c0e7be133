//! The only door to atomics, futex calls, spin hints, the clock and process liveness used by
//! the shared-memory algorithms.
//!
//! Everything that touches a shared word goes through here, so that one namespaced cfg can
//! swap these for model-checked versions: the `loom-tests` crate compiles the backend sources
//! against its own `sync` module with the same names (loom atomics, a futex emulation, a
//! simulated clock and a simulated liveness oracle).

pub(crate) use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(target_os = "linux")]
pub(crate) mod futex;

/// Bounded exponential back-off for spinning before sleeping: a few rounds of `pause`
/// (2, 4, 8), then up to seven `sched_yield`s, then it says stop.
#[cfg(target_os = "linux")]
pub(crate) use parking_lot_core::SpinWait;

/// Absolute CLOCK_MONOTONIC deadlines.
#[cfg(target_os = "linux")]
pub(crate) use crate::sys::time::Deadline;

/// Who this process is, and whether another one is alive.
#[cfg(target_os = "linux")]
pub(crate) mod process {
    pub(crate) use crate::sys::process::{current, probe, Identity, Probe, PID_BITS};
}
