//! The owner field of the lock word, and how a waiter decides that its owner is dead.
//!
//! A held word names the owning process by its liveness token (bits 0..30, see
//! `crate::sys::liveness`); bit 31 is the mutex's `CONTENDED` flag. The owner is written by
//! the very compare-exchange that takes the lock, so there is no window in which a held lock
//! has no recorded owner. An owner is dead only when the kernel says so (its liveness lock is
//! gone); a waiter never concludes death from what it cannot see.

use core::time::Duration;

use crate::sync::liveness;
use crate::sync::Deadline;
use crate::sys::liveness::{Verdict, TOKEN_MASK};

pub(super) use crate::sync::liveness::me;
pub(super) use crate::sys::liveness::Me;

/// Bits 0..30: the owner's token.
pub(super) const OWNER_MASK: u32 = TOKEN_MASK;

/// Whether the owner named by the held word `state` is dead, for `try_lock`: an owner found
/// alive by this thread less than a millisecond ago is not asked about again.
pub(super) fn is_dead_memoized(state: u32) -> bool {
    liveness::judge_recent(state & OWNER_MASK) == Verdict::Dead
}

/// A waiter's schedule of liveness checks: sleeps of growing length between two checks of
/// the same owner.
pub(crate) struct Patrol {
    /// The sleep before the next check.
    interval: Duration,
    /// The owner bits last checked; the schedule restarts when they change.
    owner: u32,
    /// When the next check is due; kept across early wake-ups (signals, spurious wakes), so
    /// that a stream of them cannot postpone the check forever.
    check: Option<Deadline>,
}

/// The first sleep between two checks of the same owner.
const FIRST_CHECK: Duration = Duration::from_millis(1);
/// The longest sleep between two checks of the same owner.
const MAX_CHECK: Duration = Duration::from_millis(16);

impl Patrol {
    pub(crate) fn new() -> Patrol {
        Patrol {
            interval: FIRST_CHECK,
            owner: 0,
            check: None,
        }
    }

    /// When a waiter of a lock held by `owner` should next wake up to check it, no later
    /// than `deadline`.
    pub(crate) fn next_wake(&mut self, owner: u32, deadline: Option<Deadline>) -> Option<Deadline> {
        if owner != self.owner {
            *self = Patrol::new();
            self.owner = owner;
        }
        if self.check.is_none() {
            self.check = Deadline::now().plus(self.interval);
            self.interval = (self.interval * 2).min(MAX_CHECK);
        }
        match self.check {
            Some(check) => Some(check.earlier(deadline)),
            None => deadline,
        }
    }

    /// Whether to check the owner now, after a wait that `timed_out` or not: when the wait
    /// timed out, or when the scheduled check has come even though the wait returned early
    /// (EINTR, a spurious or stale wake). Consumes the scheduled check.
    pub(crate) fn check_due(&mut self, timed_out: bool) -> bool {
        let due = timed_out || self.check.map_or(true, Deadline::passed);
        if due {
            self.check = None;
        }
        due
    }
}

/// Whether the owner named by the held word `state` is certainly dead.
pub(super) fn is_dead(state: u32) -> bool {
    liveness::judge(state & OWNER_MASK) == Verdict::Dead
}
