//! The only door to atomics, futex calls, spin hints, the clock and process liveness used by
//! the shared-memory algorithms.
//!
//! Everything that touches a shared word goes through here, and this is the one place that
//! picks the flavour:
//!
//! - normally, the real ones: `core` atomics, shared futex system calls, `parking_lot_core`'s
//!   spin back-off, CLOCK_MONOTONIC and `/proc` probes;
//! - under `--cfg shmsync_loom`, the model-checked ones of [`loom`](self::loom): loom atomics
//!   behind const-constructible wrappers, a futex emulation, a simulated clock and a simulated
//!   liveness oracle, so that loom explores every interleaving of code that uses the public
//!   primitives (see `shmsync::loom`).
//!
//! [`native`] always holds the real atomics and futex calls: the segment headers of
//! `src/region/` live in memory that other processes map, which no model can stand in for.

/// The real atomics and futex calls, whatever the flavour.
pub(crate) mod native {
    pub(crate) use core::sync::atomic::AtomicU32;

    #[cfg(target_os = "linux")]
    pub(crate) mod futex;
}

#[cfg(not(shmsync_loom))]
mod cell;

#[cfg(shmsync_loom)]
pub(crate) mod loom;

pub(crate) use core::sync::atomic::Ordering;

#[cfg(not(shmsync_loom))]
pub(crate) use self::cell::{Access, DataCell};
#[cfg(not(shmsync_loom))]
pub(crate) use self::native::AtomicU32;

#[cfg(all(target_os = "linux", not(shmsync_loom)))]
pub(crate) use self::native::futex;

/// Bounded exponential back-off for spinning before sleeping: a few rounds of `pause`
/// (2, 4, 8), then up to seven `sched_yield`s, then it says stop.
#[cfg(all(target_os = "linux", not(shmsync_loom)))]
pub(crate) use parking_lot_core::SpinWait;

/// Absolute CLOCK_MONOTONIC deadlines.
#[cfg(not(shmsync_loom))]
pub use crate::sys::time::Deadline;

/// Which process owns a lock, and whether it is certainly dead.
#[cfg(not(shmsync_loom))]
pub(crate) mod liveness {
    pub(crate) use crate::sys::liveness::{judge, me, Me, Verdict, TOKEN_MASK};
}

#[cfg(shmsync_loom)]
pub use self::loom::Deadline;
#[cfg(shmsync_loom)]
pub(crate) use self::loom::{futex, liveness, Access, AtomicU32, DataCell, SpinWait};
