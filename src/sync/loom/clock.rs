//! The simulated CLOCK_MONOTONIC.
//!
//! Time is in simulated milliseconds and moves only when a user deadline passes. There are
//! two kinds of deadline:
//!
//! - *user* deadlines, made from a timeout the program passed ([`Deadline::after`], as in
//!   `try_lock_for` and `wait_timeout`), may pass at any moment: a futex wait on one returns
//!   `TimedOut` at once unless the word already changed, and moves the clock to it;
//! - *schedule* deadlines, made by the lock's own liveness-check schedule from
//!   [`Deadline::now`], never pass by themselves: see [`word`](super::word) for when a wait
//!   on one ends.
//!
//! So a lost wake-up is a deadlock that loom reports, and a death is always noticed.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::sync::Ordering;

loom::lazy_static! {
    /// The simulated clock, in milliseconds; made afresh for each execution of a model.
    static ref CLOCK: AtomicU64 = AtomicU64::new(0);
}

/// A simulated absolute deadline on CLOCK_MONOTONIC (under `--cfg shmsync_loom`).
///
/// Only the crate makes these; the raw backend traits take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: u64,
    /// Made from a program's timeout (may pass at any time) rather than by the schedule.
    pub(crate) user: bool,
}

#[allow(dead_code)]
impl Deadline {
    /// The current simulated time, as a schedule deadline.
    pub(crate) fn now() -> Deadline {
        Deadline {
            at: CLOCK.load(Ordering::Relaxed),
            user: false,
        }
    }

    /// A user deadline `timeout` from now, which may pass at any moment; `None` (wait
    /// forever) when it does not fit.
    pub(crate) fn after(timeout: Duration) -> Option<Deadline> {
        let ms = u64::try_from(timeout.as_millis()).ok()?;
        Some(Deadline {
            at: CLOCK.load(Ordering::Relaxed).checked_add(ms)?,
            user: true,
        })
    }

    /// This deadline moved `d` later; `None` on overflow.
    pub(crate) fn plus(self, d: Duration) -> Option<Deadline> {
        let ms = u64::try_from(d.as_millis()).ok()?;
        Some(Deadline {
            at: self.at.checked_add(ms)?,
            user: self.user,
        })
    }

    /// Whether the simulated clock has reached this deadline.
    pub(crate) fn passed(self) -> bool {
        CLOCK.load(Ordering::Relaxed) >= self.at
    }

    /// The deadline a wait should use: a user deadline wins over a schedule one, since only
    /// it can pass by itself; otherwise the earlier.
    pub(crate) fn earlier(self, other: Option<Deadline>) -> Deadline {
        match other {
            Some(o) if o.user && (!self.user || o.at < self.at) => o,
            Some(o) if !self.user && !o.user && o.at < self.at => o,
            _ => self,
        }
    }

    /// This time in simulated milliseconds, modulo 2^32.
    pub(crate) fn millis(self) -> u32 {
        self.at as u32
    }

    /// Moves the clock to this deadline: it has passed.
    pub(crate) fn expire(self) {
        CLOCK.fetch_max(self.at, Ordering::Relaxed);
    }
}
