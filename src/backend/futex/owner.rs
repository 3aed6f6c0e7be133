//! The owner field of the lock word, and how a waiter decides that its owner is dead.
//!
//! A held word names the owning process: bits 0..22 hold its PID (`pid_max` is at most 2^22)
//! and bits 22..30 an 8-bit tag made from its start time. Bit 30 is always 0; bit 31 is the
//! mutex's `CONTENDED` flag. The owner is written by the very compare-exchange that takes the
//! lock, so there is no window in which a held lock has no recorded owner.
//!
//! The full low 32 bits of the start time live in a second word, written just after the lock
//! is taken. Together they guard against PID reuse: a live process whose tag differs from the
//! word's is certainly not the owner; one whose tag matches but whose start time differs from
//! the second word is either an owner between its compare-exchange and that store, or a
//! newcomer that reused the PID with the same tag (1 in 255). Only a mismatch that persists
//! for [`SUSPICION_GRACE`] counts as death.

use core::time::Duration;

use crate::sync::process::{self, Identity, Probe};
use crate::sync::Deadline;

/// Bits 0..22: the owner's PID.
pub(super) const PID_MASK: u32 = (1 << 22) - 1;
/// Position of the tag bits.
const TAG_SHIFT: u32 = 22;
/// Bits 22..30: the tag of the owner's start time; 0 when the owner did not know it.
const TAG_MASK: u32 = 0xff << TAG_SHIFT;
/// How long a start-time mismatch must last before the owner counts as dead.
pub(super) const SUSPICION_GRACE: Duration = Duration::from_secs(1);

const _: () = assert!(PID_MASK & TAG_MASK == 0 && (PID_MASK | TAG_MASK) >> 30 == 0);
const _: () = assert!(process::PID_BITS == TAG_SHIFT);

/// The calling process as a lock owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Me {
    /// The owner bits: PID and tag; never 0.
    pub(super) word: u32,
    /// The low 32 bits of this process's start time.
    pub(super) start: u32,
}

impl Me {
    /// The calling process, from the cached identity (no system call once cached).
    #[inline]
    pub(super) fn get() -> Me {
        let Identity { pid, start } = process::current();
        Me {
            word: word_of(pid, start),
            start,
        }
    }
}

/// The 8-bit tag of a start time, in 1..=255; 0 stands for "unknown".
pub(super) const fn tag_of(start: u32) -> u32 {
    if start == 0 {
        0
    } else {
        start % 255 + 1
    }
}

/// The owner bits for a process, as a locker would write them.
pub(super) const fn word_of(pid: u32, start: u32) -> u32 {
    (pid & PID_MASK) | (tag_of(start) << TAG_SHIFT)
}

/// What a probe says about the owner named by a held word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It is alive, or we cannot tell.
    Alive,
    /// It is gone, a zombie, or its PID belongs to another process now.
    Dead,
    /// A live process with the right tag but another start time than the second word.
    Suspect,
}

/// Probes the owner named by `state` (a held lock word) whose start word reads `start_word`.
/// A word naming the calling process needs no probe.
pub(super) fn judge(state: u32, start_word: u32) -> Verdict {
    let pid = state & PID_MASK;
    let tag = (state & TAG_MASK) >> TAG_SHIFT;
    let me = process::current();
    if pid == me.pid {
        // Either another thread of this process, or a dead process whose PID we reuse.
        return if tag == 0 || tag == tag_of(me.start) {
            Verdict::Alive
        } else {
            Verdict::Dead
        };
    }
    match process::probe(pid) {
        Probe::Dead => Verdict::Dead,
        Probe::Unknown => Verdict::Alive,
        Probe::Alive { start } if tag == 0 || start == 0 => Verdict::Alive,
        Probe::Alive { start } if tag_of(start) != tag => Verdict::Dead,
        Probe::Alive { start } if start == start_word => Verdict::Alive,
        // The start word is blank (cleared by the last unlock) or was written by an earlier
        // owner with another tag: this owner took the lock and has not written its start
        // time yet. It is alive however long that takes (it may be stopped there).
        Probe::Alive { .. } if start_word == 0 || tag_of(start_word) != tag => Verdict::Alive,
        Probe::Alive { .. } => Verdict::Suspect,
    }
}

/// How long a `try_lock` trusts a probe that found the owner alive.
#[cfg(not(shmsync_loom))]
const TRUST_ALIVE: Duration = Duration::from_millis(1);

#[cfg(not(shmsync_loom))]
std::thread_local! {
    /// The owner bits and start word this thread last found alive, and until when to
    /// believe it.
    static LAST_ALIVE: core::cell::Cell<Option<(u32, u32, Deadline)>> =
        const { core::cell::Cell::new(None) };
}

/// [`judge`] for `try_lock`: an owner found alive less than [`TRUST_ALIVE`] ago by this
/// thread is not probed again, so a loop of `try_lock`s on a held lock costs a clock read
/// per call and one `/proc` read per millisecond (a death is then seen up to 1 ms late).
#[cfg(not(shmsync_loom))]
pub(super) fn judge_memoized(state: u32, start_word: u32) -> Verdict {
    let owner = state & (PID_MASK | TAG_MASK);
    let now = Deadline::now();
    if let Some((o, s, until)) = LAST_ALIVE.with(core::cell::Cell::get) {
        if o == owner && s == start_word && now < until {
            return Verdict::Alive;
        }
    }
    let verdict = judge(state, start_word);
    if verdict == Verdict::Alive {
        let until = now.plus(TRUST_ALIVE);
        LAST_ALIVE.with(|last| last.set(until.map(|u| (owner, start_word, u))));
    }
    verdict
}

/// Under loom every `try_lock` probes.
#[cfg(shmsync_loom)]
pub(super) fn judge_memoized(state: u32, start_word: u32) -> Verdict {
    judge(state, start_word)
}

/// A waiter's schedule of liveness checks: sleeps of growing length between probes, and a
/// memory of a suspect owner.
pub(super) struct Patrol {
    /// The sleep before the next probe.
    interval: Duration,
    /// The owner bits last probed; the schedule restarts when they change.
    owner: u32,
    /// When the current owner was first found suspect.
    suspect_since: Option<Deadline>,
    /// When the next probe is due; kept across early wake-ups (signals, spurious wakes), so
    /// that a stream of them cannot postpone the probe forever.
    check: Option<Deadline>,
}

/// The first sleep between two probes of the same owner.
const FIRST_CHECK: Duration = Duration::from_millis(1);
/// The longest sleep between two probes of the same owner.
const MAX_CHECK: Duration = Duration::from_millis(16);

impl Patrol {
    pub(super) fn new() -> Patrol {
        Patrol {
            interval: FIRST_CHECK,
            owner: 0,
            suspect_since: None,
            check: None,
        }
    }

    /// When a waiter of a lock held by `owner` should next wake up to probe it, no later
    /// than `deadline`.
    pub(super) fn next_wake(&mut self, owner: u32, deadline: Option<Deadline>) -> Option<Deadline> {
        if owner != self.owner {
            *self = Patrol::new();
            self.owner = owner;
        }
        if self.check.is_none() {
            self.check = Deadline::now().plus(self.interval);
            self.interval = (self.interval * 2).min(MAX_CHECK);
        }
        match self.check {
            Some(check) => Some(check.min(deadline)),
            None => deadline,
        }
    }

    /// Whether to probe the owner now, after a wait that `timed_out` or not: when the wait
    /// timed out, or when the scheduled probe time has come even though the wait returned
    /// early (EINTR, a spurious or stale wake). Consumes the scheduled probe.
    pub(super) fn probe_due(&mut self, timed_out: bool) -> bool {
        let due = timed_out || self.check.map_or(true, Deadline::passed);
        if due {
            self.check = None;
        }
        due
    }

    /// Whether the owner of the held word `state` is dead, counting a suspect as dead once
    /// the suspicion has lasted [`SUSPICION_GRACE`].
    pub(super) fn owner_is_dead(&mut self, state: u32, start_word: u32) -> bool {
        match judge(state, start_word) {
            Verdict::Alive => {
                self.suspect_since = None;
                false
            }
            Verdict::Dead => true,
            Verdict::Suspect => {
                let since = *self.suspect_since.get_or_insert_with(Deadline::now);
                since.plus(SUSPICION_GRACE).is_some_and(Deadline::passed)
            }
        }
    }
}
