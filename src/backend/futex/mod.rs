//! The futex backend's mutex: one shared futex word that names its owner process.
//!
//! States of the word: [`UNLOCKED`] (0), or the owner's liveness token (see [`owner`])
//! possibly with [`CONTENDED`]. Locking is one compare-exchange `0 => me`, then a relaxed
//! store of the owner's PID into the second word (for diagnostics only); unlocking is one swap
//! to 0, followed by a `FUTEX_WAKE` only when the old word had `CONTENDED`.
//!
//! A locker that finds the word held spins a little (only while nobody sleeps), then sets
//! `CONTENDED` and sleeps in `FUTEX_WAIT_BITSET` with a short absolute deadline: 1 ms at
//! first, doubling up to 16 ms. Each time it wakes with the word unchanged it asks the kernel
//! whether the owner's liveness lock is still held (`F_OFD_GETLK`, one system call); an owner
//! whose lock is gone is replaced by a compare-exchange `its word => mine | CONTENDED`, and the
//! locker reports [`Acquired::OwnerDied`]. The uncontended path never looks at liveness.
//!
//! Notes about memory ordering:
//! - Taking the lock (from [`UNLOCKED`] or from a dead owner) is an `Acquire`
//!   compare-exchange; releasing is a `Release` swap. They pair like any mutex's, so
//!   everything a holder wrote before unlocking is visible to the next holder. A dead owner
//!   released nothing: its writes may be torn, which is what poisoning reports.
//! - Setting `CONTENDED` is `Relaxed`: it publishes no data, and the kernel re-reads the word
//!   under its own lock before sleeping, so a wake that follows an unlock cannot be lost.
//! - The PID word is `Relaxed` both ways: nothing but diagnostics reads it.

pub(crate) mod owner;

use self::owner::{Me, Patrol};
use crate::backend::{Acquired, BackendId, LockOwner, RawMutex, Sealed};
use crate::sync::{word, AtomicU32, Deadline, MakeModel, Ordering, SpinWait, Wake, MODELLED};

/// No one holds the lock.
const UNLOCKED: u32 = 0;
/// Set while a locker may be asleep on the word: the unlocker must wake one.
const CONTENDED: u32 = 1 << 31;

const _: () = assert!(owner::OWNER_MASK & CONTENDED == 0);

/// The futex backend's raw mutex: a lock word that names its owner, and the owner's PID.
#[repr(C)]
pub struct RawFutexMutex {
    /// [`UNLOCKED`], or the owner's bits, with [`CONTENDED`] when a locker may sleep.
    word: AtomicU32,
    /// The owner's PID in its own namespace, 0 while unlocked; for diagnostics only.
    pid: AtomicU32,
}

const _: () = assert!(MODELLED || core::mem::size_of::<RawFutexMutex>() == 8);
const _: () = assert!(MODELLED || core::mem::align_of::<RawFutexMutex>() == 4);

impl Sealed for RawFutexMutex {}

impl MakeModel for RawFutexMutex {
    fn make_model(&self) {
        self.word.make_model();
        self.pid.make_model();
    }
}

// SAFETY: every successful acquisition is a compare-exchange from UNLOCKED or from the exact
// word of an owner found dead, so one holder at a time; the two words hold no pointer and
// all-zero is unlocked; a holder is taken over only once the kernel dropped its liveness lock.
unsafe impl RawMutex for RawFutexMutex {
    const ID: BackendId = BackendId::Futex;
    const INIT: Self = RawFutexMutex {
        word: AtomicU32::new(UNLOCKED),
        pid: AtomicU32::new(0),
    };

    #[inline]
    fn lock(&self) -> Acquired {
        let me = owner::me();
        if self.acquire(me, me.token) {
            return Acquired::Clean;
        }
        match self.lock_contended(me, None) {
            Some(acquired) => acquired,
            None => unreachable!("a lock without a deadline timed out"),
        }
    }

    #[inline]
    fn try_lock(&self) -> Option<Acquired> {
        let me = owner::me();
        // UNLOCKED => me
        match self
            .word
            .compare_exchange(UNLOCKED, me.token, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                self.pid.store(me.pid, Ordering::Relaxed);
                Some(Acquired::Clean)
            }
            Err(state) => self.try_take_over(me, state),
        }
    }

    #[inline]
    fn try_lock_until(&self, deadline: Deadline) -> Option<Acquired> {
        let me = owner::me();
        if self.acquire(me, me.token) {
            return Some(Acquired::Clean);
        }
        self.lock_contended(me, Some(deadline))
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.pid.store(0, Ordering::Relaxed);
        if self.word.swap(UNLOCKED, Ordering::Release) & CONTENDED != 0 {
            self.wake_one();
        }
    }

    fn owner(&self) -> Option<LockOwner> {
        let state = self.word.load(Ordering::Relaxed);
        if state == UNLOCKED {
            return None;
        }
        let pid = self.pid.load(Ordering::Relaxed);
        Some(LockOwner::new(
            (pid != 0).then_some(pid),
            owner::is_dead(state),
        ))
    }
}

crate::sync::native_only! {
    // SAFETY: `INIT` is two zero words (UNLOCKED, no PID) and a zero poison word is "not
    // poisoned", so an all-zero mutex is `ShmMutex::new` of an all-zero value. Not in the
    // model, whose atomics are loom objects.
    unsafe impl<T: crate::ShmZeroable> crate::ShmZeroable for crate::generic::ShmMutex<T, RawFutexMutex> {}
}

impl RawFutexMutex {
    /// One compare-exchange `UNLOCKED => new`; on success records the PID.
    #[inline]
    fn acquire(&self, me: Me, new: u32) -> bool {
        // UNLOCKED => new (me, possibly with CONTENDED)
        let taken = self
            .word
            .compare_exchange(UNLOCKED, new, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if taken {
            self.pid.store(me.pid, Ordering::Relaxed);
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
                me.token | CONTENDED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok();
        if taken {
            self.pid.store(me.pid, Ordering::Relaxed);
        }
        taken
    }

    /// `try_lock` found the word held: takes it only if its owner is dead. Costs at most one
    /// liveness query (one system call) per millisecond and thread; none when the owner is
    /// this process.
    #[cold]
    fn try_take_over(&self, me: Me, state: u32) -> Option<Acquired> {
        (owner::is_dead_memoized(state) && self.take_over(me, state)).then_some(Acquired::OwnerDied)
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
        if state == UNLOCKED && self.acquire(me, me.token) {
            return Some(Acquired::Clean);
        }
        let mut patrol = Patrol::new();
        loop {
            state = self.word.load(Ordering::Relaxed);
            if state == UNLOCKED {
                // Others may sleep: keep CONTENDED so that our unlock wakes one of them.
                if self.acquire(me, me.token | CONTENDED) {
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
            let timed_out = word::wait(&self.word, state, wake_by) == Wake::TimedOut;
            if patrol.check_due(timed_out) && owner::is_dead(state) && self.take_over(me, state) {
                return Some(Acquired::OwnerDied);
            }
            if timed_out && deadline.is_some_and(Deadline::passed) {
                return None;
            }
        }
    }

    #[cold]
    fn wake_one(&self) {
        word::wake_one(&self.word);
    }
}

/// What `shmsync::futex::__test_hooks` reads and forges (the `test-hooks` feature only).
#[cfg(feature = "test-hooks")]
impl RawFutexMutex {
    /// The lock word and the PID word.
    pub(crate) fn raw_state(&self) -> (u32, u32) {
        (
            self.word.load(Ordering::Relaxed),
            self.pid.load(Ordering::Relaxed),
        )
    }

    /// Overwrites both words, for tests that forge an owner. Like every write to the lock
    /// word, this is a read-modify-write, so it is ordered after every earlier one.
    pub(crate) fn forge_state(&self, word: u32, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
        self.word.swap(word, Ordering::Release);
    }

    /// The token the calling process writes into lock words.
    pub(crate) fn my_token() -> u32 {
        owner::me().token
    }

    /// The flag that says a locker may sleep on the word.
    pub(crate) const CONTENDED_BIT: u32 = CONTENDED;
}

/// The futex backend's condition variable: a shared futex sequence counter.
pub type RawFutexCondvar = crate::backend::seq_condvar::SeqCondvar<RawFutexMutex>;

const _: () = assert!(MODELLED || core::mem::size_of::<RawFutexCondvar>() <= 12);
const _: () =
    assert!(MODELLED || core::mem::size_of::<crate::generic::ShmMutex<(), RawFutexMutex>>() == 12);
