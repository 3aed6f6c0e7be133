//! The only door to atomics, futex calls, spin hints, the clock and owner liveness used by
//! the shared-memory algorithms, and the only place that knows whether they are modelled.
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
    pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};

    #[cfg(target_os = "linux")]
    pub(crate) mod word;
}

#[cfg(not(shmsync_loom))]
mod cell;

#[cfg(shmsync_loom)]
pub(crate) mod loom;

pub(crate) use core::sync::atomic::Ordering;

/// Whether this build runs on loom's model of the world (`--cfg shmsync_loom`) rather than the
/// real one. The rest of the crate asks this constant, or uses the macros below, and never
/// names the cfg.
pub(crate) const MODELLED: bool = cfg!(shmsync_loom);

/// Items that exist only in the real world (not under loom).
macro_rules! native_only {
    ($($item:item)*) => { $( #[cfg(not(shmsync_loom))] $item )* };
}

/// Items that exist wherever the futex backend does: on Linux, and in the model.
macro_rules! with_futex {
    ($($item:item)*) => { $( #[cfg(any(target_os = "linux", shmsync_loom))] $item )* };
}

/// A constructor that is a `const fn` in the real world. In the model it is a plain `fn` that
/// makes the value's loom objects before returning it, so that their creation happens before
/// any other model thread uses them (loom requires it).
macro_rules! constructor {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> Self $body:block
    ) => {
        $(#[$attr])*
        #[cfg(not(shmsync_loom))]
        $vis const fn $name($($arg: $ty),*) -> Self $body

        $(#[$attr])*
        #[cfg(shmsync_loom)]
        $vis fn $name($($arg: $ty),*) -> Self {
            let made = $body;
            $crate::sync::MakeModel::make_model(&made);
            made
        }
    };
}

/// Items that exist only where the futex backend does not (other Unixes, outside the model).
macro_rules! without_futex {
    ($($item:item)*) => { $( #[cfg(not(any(target_os = "linux", shmsync_loom)))] $item )* };
}

pub(crate) use {constructor, native_only, with_futex, without_futex};

/// Makes the loom objects behind a value built in `const` code; nothing in the real world.
pub trait MakeModel {
    /// Makes them now.
    fn make_model(&self) {}
}

impl MakeModel for native::AtomicU32 {}
impl MakeModel for native::AtomicU64 {}

/// How a wait on a shared word ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken by a wake call on the word (the waker took this sleeper off the queue).
    Woken,
    /// Interrupted by a signal, or the word no longer held the expected value.
    Early,
    /// The deadline passed.
    TimedOut,
}

native_only! {
    pub(crate) use self::cell::{Access, DataCell};
    pub(crate) use self::native::{AtomicU32, AtomicU64};

    /// A memory fence.
    pub(crate) use core::sync::atomic::fence;

    /// Bounded exponential back-off for spinning before sleeping: a few rounds of `pause`
    /// (2, 4, 8), then up to seven `sched_yield`s, then it says stop.
    pub(crate) use parking_lot_core::SpinWait;

    /// Absolute CLOCK_MONOTONIC deadlines.
    pub use crate::sys::time::Deadline;

    /// Which process owns a lock, and whether it is certainly dead.
    pub(crate) mod liveness {
        pub(crate) use crate::sys::liveness::{judge, judge_recent, me};
    }
}

#[cfg(all(target_os = "linux", not(shmsync_loom)))]
pub(crate) use self::native::word;

#[cfg(shmsync_loom)]
pub use self::loom::Deadline;
#[cfg(shmsync_loom)]
pub(crate) use self::loom::{liveness, word, Access, AtomicU32, AtomicU64, DataCell, SpinWait};
#[cfg(shmsync_loom)]
pub(crate) use ::loom::sync::atomic::fence;
