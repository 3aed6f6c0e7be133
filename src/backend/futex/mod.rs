//! The futex backend's mutex: one shared futex word that names its owner process.
//!
//! States of the word: [`UNLOCKED`] (0), or the owner's bits (PID and start-time tag, see
//! [`owner`]) possibly with [`CONTENDED`]. Locking is one compare-exchange `0 => me`, then a
//! relaxed store of the owner's start time into the second word; unlocking is one swap to 0,
//! followed by a `FUTEX_WAKE` only when the old word had `CONTENDED`.
//!
//! A locker that finds the word held spins a little (only while nobody sleeps), then sets
//! `CONTENDED` and sleeps in `FUTEX_WAIT_BITSET` with a short absolute deadline: 1 ms at
//! first, doubling up to 16 ms. Each time it wakes with the word unchanged it probes the owner
//! (`/proc/<pid>/stat`); a dead owner is replaced by a compare-exchange `its word => mine |
//! CONTENDED`, and the locker reports [`Acquired::OwnerDied`]. The uncontended path never
//! looks at liveness.
//!
//! Notes about memory ordering:
//! - Taking the lock (from [`UNLOCKED`] or from a dead owner) is an `Acquire`
//!   compare-exchange; releasing is a `Release` swap. They pair like any mutex's, so
//!   everything a holder wrote before unlocking is visible to the next holder. A dead owner
//!   released nothing: its writes may be torn, which is what poisoning reports.
//! - Setting `CONTENDED` is `Relaxed`: it publishes no data, and the kernel re-reads the word
//!   under its own lock before sleeping, so a wake that follows an unlock cannot be lost.
//! - The start-time word is `Relaxed` both ways: it is a heuristic used only to tell a reused
//!   PID apart, and a stale read only delays a verdict (see [`owner`]).

mod owner;

use self::owner::{Me, Patrol};
use crate::backend::{Acquired, BackendId, RawMutex, Sealed};
use crate::sync::futex::{self, Wake};
use crate::sync::{AtomicU32, Deadline, Ordering, SpinWait};

/// No one holds the lock.
const UNLOCKED: u32 = 0;
/// Set while a locker may be asleep on the word: the unlocker must wake one.
const CONTENDED: u32 = 1 << 31;

const _: () = assert!(owner::PID_MASK & CONTENDED == 0);

/// The futex backend's raw mutex: a lock word that names its owner, and the owner's start
/// time.
#[repr(C)]
pub struct RawFutexMutex {
    /// [`UNLOCKED`], or the owner's bits, with [`CONTENDED`] when a locker may sleep.
    word: AtomicU32,
    /// The low 32 bits of the last owner's start time; a guard against PID reuse.
    start: AtomicU32,
}

#[cfg(not(shmsync_loom))]
const _: () = assert!(core::mem::size_of::<RawFutexMutex>() == 8);
#[cfg(not(shmsync_loom))]
const _: () = assert!(core::mem::align_of::<RawFutexMutex>() == 4);

impl Sealed for RawFutexMutex {}

// SAFETY: every successful acquisition is a compare-exchange from UNLOCKED or from the exact
// word of an owner found dead, so one holder at a time; the two words hold no pointer and
// all-zero is unlocked; a dead holder is found by the waiters' periodic probes.
unsafe impl RawMutex for RawFutexMutex {
    const ID: BackendId = BackendId::Futex;
    const INIT: Self = RawFutexMutex {
        word: AtomicU32::new(UNLOCKED),
        start: AtomicU32::new(0),
    };

    #[inline]
    fn lock(&self) -> Acquired {
        let me = Me::get();
        if self.acquire(me, me.word) {
            return Acquired::Clean;
        }
        match self.lock_contended(me, None) {
            Some(acquired) => acquired,
            None => unreachable!("a lock without a deadline timed out"),
        }
    }

    #[inline]
    fn try_lock(&self) -> Option<Acquired> {
        let me = Me::get();
        // UNLOCKED => me
        match self
            .word
            .compare_exchange(UNLOCKED, me.word, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                self.start.store(me.start, Ordering::Relaxed);
                Some(Acquired::Clean)
            }
            Err(state) => self.try_take_over(me, state),
        }
    }

    #[inline]
    fn try_lock_until(&self, deadline: Deadline) -> Option<Acquired> {
        let me = Me::get();
        if self.acquire(me, me.word) {
            return Some(Acquired::Clean);
        }
        self.lock_contended(me, Some(deadline))
    }

    #[inline]
    unsafe fn unlock(&self) {
        // Blank the start word while still the owner, so that an owner found between a later
        // lock's compare-exchange and its start store is never mistaken for a reused PID.
        self.start.store(0, Ordering::Relaxed);
        if self.word.swap(UNLOCKED, Ordering::Release) & CONTENDED != 0 {
            self.wake_one();
        }
    }

    #[cfg(shmsync_loom)]
    fn make_model_objects(&self) {
        self.word.make();
        self.start.make();
    }
}

impl RawFutexMutex {
    /// One compare-exchange `UNLOCKED => new`; on success records the start time.
    #[inline]
    fn acquire(&self, me: Me, new: u32) -> bool {
        // UNLOCKED => new (me, possibly with CONTENDED)
        let taken = self
            .word
            .compare_exchange(UNLOCKED, new, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if taken {
            self.start.store(me.start, Ordering::Relaxed);
        }
        taken
    }

    /// Replaces the word `state` of a dead owner by `me | CONTENDED`.
    fn take_over(&self, me: Me, state: u32) -> bool {
        // dead owner's word => me | CONTENDED (waiters may still sleep on the old word)
        let taken = self
            .word
            .compare_exchange(
                state,
                me.word | CONTENDED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok();
        if taken {
            self.start.store(me.start, Ordering::Relaxed);
        }
        taken
    }

    /// `try_lock` found the word held: takes it only if its owner is dead. Costs at most one
    /// probe of the owner (a read of `/proc/<pid>/stat`, ~9 µs) per millisecond and thread;
    /// none when the owner is this process.
    #[cold]
    fn try_take_over(&self, me: Me, state: u32) -> Option<Acquired> {
        let start = self.start.load(Ordering::Relaxed);
        let dead = owner::judge_memoized(state, start) == owner::Verdict::Dead;
        (dead && self.take_over(me, state)).then_some(Acquired::OwnerDied)
    }

    /// Spins while the lock is held and nobody sleeps; returns the last word seen.
    fn spin(&self) -> u32 {
        let mut spin = SpinWait::new();
        loop {
            let state = self.word.load(Ordering::Relaxed);
            if state == UNLOCKED || state & CONTENDED != 0 || !spin.spin() {
                return state;
            }
        }
    }

    #[cold]
    fn lock_contended(&self, me: Me, deadline: Option<Deadline>) -> Option<Acquired> {
        let mut state = self.spin();
        if state == UNLOCKED && self.acquire(me, me.word) {
            return Some(Acquired::Clean);
        }
        let mut patrol = Patrol::new();
        loop {
            state = self.word.load(Ordering::Relaxed);
            if state == UNLOCKED {
                // Others may sleep: keep CONTENDED so that our unlock wakes one of them.
                if self.acquire(me, me.word | CONTENDED) {
                    return Some(Acquired::Clean);
                }
                continue;
            }
            if state & CONTENDED == 0 {
                // held => held | CONTENDED
                let marked = state | CONTENDED;
                match self.word.compare_exchange(
                    state,
                    marked,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => state = marked,
                    Err(_) => continue,
                }
            }
            let wake_by = patrol.next_wake(state & !CONTENDED, deadline);
            let timed_out = futex::wait(&self.word, state, wake_by) == Wake::TimedOut;
            if patrol.probe_due(timed_out) {
                let start = self.start.load(Ordering::Relaxed);
                if patrol.owner_is_dead(state, start) && self.take_over(me, state) {
                    return Some(Acquired::OwnerDied);
                }
            }
            if timed_out && deadline.is_some_and(Deadline::passed) {
                return None;
            }
        }
    }

    #[cold]
    fn wake_one(&self) {
        futex::wake_one(&self.word);
    }

    /// The lock word and the start word, for tests.
    pub(crate) fn raw_state(&self) -> (u32, u32) {
        (
            self.word.load(Ordering::Relaxed),
            self.start.load(Ordering::Relaxed),
        )
    }

    /// Overwrites both words, for tests that forge an owner. Like every write to the lock
    /// word, this is a read-modify-write, so it is ordered after every earlier one.
    pub(crate) fn forge_state(&self, word: u32, start: u32) {
        self.start.store(start, Ordering::Relaxed);
        self.word.swap(word, Ordering::Release);
    }
}

/// The owner bits a process with this PID and start time writes into the lock word.
pub(crate) const fn owner_bits(pid: u32, start: u32) -> u32 {
    owner::word_of(pid, start)
}

/// The flag that says a locker may sleep on the word.
pub(crate) const CONTENDED_BIT: u32 = CONTENDED;

/// The futex backend's condition variable: a shared futex sequence counter.
pub type RawFutexCondvar = crate::backend::seq_condvar::SeqCondvar<RawFutexMutex>;

#[cfg(not(shmsync_loom))]
const _: () = assert!(core::mem::size_of::<RawFutexCondvar>() <= 8);
#[cfg(not(shmsync_loom))]
const _: () = assert!(core::mem::size_of::<crate::generic::ShmMutex<(), RawFutexMutex>>() == 12);
