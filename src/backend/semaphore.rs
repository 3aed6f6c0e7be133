//! The semaphore's state machine: one 64-bit state word, a futex wake counter and a table
//! of holder records that lets the permits of a dead guard holder be given back.
//!
//! The state word holds the permits available (bits 0..32), one *held* bit per holder record
//! (bits 32..63: bit `32 + i` says record `i` holds one permit) and [`SLEEPERS`] (bit 63).
//! Record `i` is a `u32` naming the process that owns it by its liveness token, or 0.
//!
//! Taking a permit as a guard is two steps, each one atomic operation:
//!
//! 1. claim a free record: compare-exchange `0 => my token`;
//! 2. take the permit *and* set the record's held bit in one compare-exchange of the state.
//!
//! Giving it back is the reverse: one `fetch_add` that adds the permit and clears the held bit
//! together, then a store of 0 into the record. So whenever a process dies, its records say
//! exactly what it held: a record naming a dead process whose held bit is set holds one
//! permit; one whose bit is clear holds none (the death fell between the two steps). Nobody
//! else sets or clears a record's held bit while the record names its owner.
//!
//! A process that finds a record of a dead owner first takes the record over
//! (compare-exchange `dead token => my token`): of several reclaimers only one wins, and a
//! reclaimer that dies after winning leaves a record naming a dead process again, which the
//! next one reclaims. The new owner then gives the permit back as the dead guard would have.
//!
//! Sleepers wait on `wakes`, a sequence counter (as the condvar's): a waiter sets
//! [`SLEEPERS`], reads `wakes`, re-checks the state and sleeps while `wakes` is unchanged.
//! Whoever adds permits to a state that had [`SLEEPERS`] clears it, bumps `wakes` and wakes
//! every sleeper. Deaths wake nobody, so sleepers also wake on the futex owner's schedule (1 ms,
//! doubling to 16 ms) and look for dead holders.
//!
//! Notes about memory ordering:
//! - Taking a permit is an `Acquire` compare-exchange of the state and giving one back a
//!   `Release` RMW, so what a holder wrote before releasing is visible to the next taker.
//! - Claiming a record is `Acquire` and clearing it `Release`: a claimer sees the record's
//!   held bit cleared by its previous owner.
//! - `wakes` is bumped with `Release` after the state change and read with `Acquire` before
//!   the re-check: a waiter that reads the new count also sees the new state, so it never
//!   sleeps on a count that was bumped for permits it missed.

use crate::backend::futex::owner::Patrol;
use crate::sync::liveness::{self, me};
use crate::sync::{word, AtomicU32, AtomicU64, Deadline, MakeModel, Ordering, Wake, MODELLED};
use crate::sys::liveness::{Me, Verdict};

/// How many holder records a semaphore has: at most this many permits are held as guards at
/// once (permits taken and forgotten, or given by `release`, are not limited). The model has
/// 3, which is as many as its threads can use, and keeps each scan of the table short.
pub(crate) const RECORDS: usize = if MODELLED { 3 } else { 31 };
/// The most permits a semaphore counts; `release` beyond it panics.
pub(crate) const MAX_PERMITS: u32 = i32::MAX as u32;

/// Bits 0..32 of the state: the permits available.
const AVAIL: u64 = u32::MAX as u64;
/// The held bit of record 0; record `i`'s is this shifted left by `i`.
const HELD_0: u64 = 1 << 32;
/// Every held bit.
const HELD: u64 = ((1 << RECORDS) - 1) << 32;
/// Set while an acquirer may sleep on `wakes`: whoever adds permits must wake them.
const SLEEPERS: u64 = 1 << 63;

const _: () = assert!(HELD & SLEEPERS == 0 && HELD & AVAIL == 0);
// A permit given back to a full count stays below 2^32: no carry into the held bits.
const _: () = assert!(MAX_PERMITS as u64 + RECORDS as u64 <= AVAIL);

/// The held bit of record `i`.
const fn held_bit(i: usize) -> u64 {
    HELD_0 << i
}

/// The raw semaphore in shared memory. Every bit pattern is a state: a forged one can make
/// permits appear or vanish, never make the code touch other memory.
#[repr(C)]
pub(crate) struct RawSemaphore {
    /// Permits available, held bits and [`SLEEPERS`].
    state: AtomicU64,
    /// Bumped whenever permits are added while someone may sleep; the futex word sleepers
    /// wait on.
    wakes: AtomicU32,
    /// Always 0; keeps the records at a fixed offset.
    reserved: AtomicU32,
    /// The token of the process owning each holder record, or 0.
    records: [AtomicU32; RECORDS],
    /// Always 0; pads the size to a multiple of 8.
    tail: AtomicU32,
}

const _: () = assert!(MODELLED || core::mem::size_of::<RawSemaphore>() == 144);
const _: () = assert!(MODELLED || core::mem::align_of::<RawSemaphore>() == 8);

impl MakeModel for RawSemaphore {
    fn make_model(&self) {
        self.state.make_model();
        self.wakes.make_model();
        self.reserved.make_model();
        self.records.iter().for_each(MakeModel::make_model);
        self.tail.make_model();
    }
}

/// A record no process owns (a `const` item, so that it can fill an array).
#[allow(clippy::declare_interior_mutable_const)]
const FREE: AtomicU32 = AtomicU32::new(0);

/// A permit held as a guard: the record that tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held(usize);

impl RawSemaphore {
    /// A semaphore with `permits` available.
    ///
    /// # Panics
    ///
    /// When `permits` exceeds [`MAX_PERMITS`].
    pub(crate) const fn new(permits: u32) -> Self {
        assert!(permits <= MAX_PERMITS, "ShmSemaphore::new: too many permits");
        RawSemaphore {
            state: AtomicU64::new(permits as u64),
            wakes: AtomicU32::new(0),
            reserved: AtomicU32::new(0),
            records: [FREE; RECORDS],
            tail: AtomicU32::new(0),
        }
    }

    /// The permits available now.
    pub(crate) fn available(&self) -> u32 {
        (self.state.load(Ordering::Relaxed) & AVAIL) as u32
    }

    /// Takes a permit if one is available now and a record is free.
    #[inline]
    fn take_now(&self, me: Me) -> Option<Held> {
        let held = self.claim_record(me.token)?;
        if self.take_permit(held) {
            return Some(held);
        }
        self.free_record(held);
        None
    }

    /// Takes a permit now, reclaiming those of dead holders if there is none.
    #[inline]
    pub(crate) fn try_acquire(&self) -> Option<Held> {
        let me = me();
        self.take_now(me).or_else(|| self.try_acquire_reclaiming(me))
    }

    #[cold]
    fn try_acquire_reclaiming(&self, me: Me) -> Option<Held> {
        (self.reclaim_dead(me, liveness::judge_recent) > 0)
            .then(|| self.take_now(me))
            .flatten()
    }

    /// Blocks until a permit is taken, or `deadline` passes.
    #[inline]
    pub(crate) fn acquire(&self, deadline: Option<Deadline>) -> Option<Held> {
        let me = me();
        self.take_now(me).or_else(|| self.acquire_slow(me, deadline))
    }

    #[cold]
    fn acquire_slow(&self, me: Me, deadline: Option<Deadline>) -> Option<Held> {
        let mut patrol = Patrol::new();
        loop {
            if let Some(held) = self.take_now(me) {
                return Some(held);
            }
            let Some(seq) = self.prepare_sleep() else {
                continue;
            };
            let held_bits = (self.state.load(Ordering::Relaxed) & HELD) >> 32;
            let wake_by = patrol.next_wake(held_bits as u32, deadline);
            let timed_out = word::wait(&self.wakes, seq, wake_by) == Wake::TimedOut;
            if patrol.check_due(timed_out) && self.reclaim_dead(me, liveness::judge) > 0 {
                continue;
            }
            if timed_out && deadline.is_some_and(Deadline::passed) {
                return self.take_now(me);
            }
        }
    }

    /// Sets [`SLEEPERS`] and returns the `wakes` count to sleep on, or `None` when the state
    /// changed so that sleeping could miss a permit.
    fn prepare_sleep(&self) -> Option<u32> {
        let state = self.state.load(Ordering::Relaxed);
        if state & SLEEPERS == 0 {
            // state => state | SLEEPERS
            self.state
                .compare_exchange(state, state | SLEEPERS, Ordering::Relaxed, Ordering::Relaxed)
                .ok()?;
        }
        let seq = self.wakes.load(Ordering::Acquire);
        let now = self.state.load(Ordering::Relaxed);
        // Permits and a free record now (take_now may have just missed them), or someone
        // added permits and cleared SLEEPERS since: look again instead of sleeping.
        let startle = now & SLEEPERS == 0 || (now & AVAIL != 0 && self.any_record_free());
        (!startle).then_some(seq)
    }

    fn any_record_free(&self) -> bool {
        self.records
            .iter()
            .any(|r| r.load(Ordering::Relaxed) == 0)
    }

    /// Claims a free record for the process `token`: compare-exchange `0 => token`, starting
    /// at a record that depends on the token so that processes spread over the table.
    #[inline]
    fn claim_record(&self, token: u32) -> Option<Held> {
        let home = token as usize % RECORDS;
        if self.claim(home, token) {
            return Some(Held(home));
        }
        self.claim_other(home, token)
    }

    #[cold]
    fn claim_other(&self, home: usize, token: u32) -> Option<Held> {
        (1..RECORDS)
            .map(|k| (home + k) % RECORDS)
            .find(|&i| self.claim(i, token))
            .map(Held)
    }

    /// Claims record `i` if it is free: compare-exchange `0 => token`.
    #[inline]
    fn claim(&self, i: usize, token: u32) -> bool {
        let record = &self.records[i];
        record.load(Ordering::Relaxed) == 0
            && record
                .compare_exchange(0, token, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Gives a record with its held bit clear back to the table.
    #[inline]
    fn free_record(&self, held: Held) {
        self.records[held.0].store(0, Ordering::Release);
    }

    /// Takes one permit into the claimed record `held`: `avail => avail - 1` and the record's
    /// held bit set, in one compare-exchange.
    #[inline]
    fn take_permit(&self, held: Held) -> bool {
        let bit = held_bit(held.0);
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            // A set bit in a record we just claimed is forged: leave that record alone.
            if state & AVAIL == 0 || state & bit != 0 {
                return false;
            }
            // avail, bit clear => avail - 1, bit set
            match self.state.compare_exchange(
                state,
                (state - 1) | bit,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// Gives back the permit of the guard `held` and frees its record.
    ///
    /// # Safety
    ///
    /// - `held` came from this semaphore's `acquire`/`try_acquire` (or a takeover) in this
    ///   process and was not given back or forgotten since.
    #[inline]
    pub(crate) unsafe fn release_held(&self, held: Held) {
        // +1 permit and the held bit cleared, in one add: the bit is set (the caller holds
        // it), so subtracting it borrows nothing.
        let delta = 1u64.wrapping_sub(held_bit(held.0));
        let old = self.state.fetch_add(delta, Ordering::Release);
        self.free_record(held);
        if old & SLEEPERS != 0 {
            self.wake_sleepers();
        }
    }

    /// Keeps the permit of the guard `held` taken, untracked: clears its held bit and frees
    /// the record.
    ///
    /// # Safety
    ///
    /// - As for [`release_held`](Self::release_held).
    pub(crate) unsafe fn forget_held(&self, held: Held) {
        self.state.fetch_sub(held_bit(held.0), Ordering::Relaxed);
        self.free_record(held);
    }

    /// Adds `n` permits that no guard held.
    ///
    /// # Panics
    ///
    /// When that would make more than [`MAX_PERMITS`] available; nothing is added then.
    pub(crate) fn release(&self, n: u32) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let avail = state & AVAIL;
            assert!(
                avail + u64::from(n) <= u64::from(MAX_PERMITS),
                "ShmSemaphore::release: more than {MAX_PERMITS} permits"
            );
            // avail, sleepers? => avail + n, no sleepers
            match self.state.compare_exchange(
                state,
                (state + u64::from(n)) & !SLEEPERS,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(old) if old & SLEEPERS != 0 => return self.bump_and_wake(),
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    #[cold]
    fn wake_sleepers(&self) {
        self.state.fetch_and(!SLEEPERS, Ordering::Relaxed);
        self.bump_and_wake();
    }

    fn bump_and_wake(&self) {
        self.wakes.fetch_add(1, Ordering::Release);
        word::wake_all(&self.wakes);
    }

    /// Gives back the permits of every record whose owner `judge` finds dead; returns how
    /// many records it reclaimed.
    #[cold]
    fn reclaim_dead(&self, me: Me, judge: fn(u32) -> Verdict) -> usize {
        let mut reclaimed = 0;
        for (i, record) in self.records.iter().enumerate() {
            let owner = record.load(Ordering::Acquire);
            let dead = mutant::JUDGE_ALL_DEAD.is_on() || judge(owner) == Verdict::Dead;
            if owner == 0 || !dead {
                continue;
            }
            // dead owner => me: of several reclaimers, one takes the record over.
            if record
                .compare_exchange(owner, me.token, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let held = Held(i);
            if self.state.load(Ordering::Relaxed) & held_bit(i) != 0 {
                // SAFETY: the record is ours now and its held bit set: we hold its permit.
                unsafe { self.release_held(held) };
            } else {
                self.free_record(held);
            }
            reclaimed += 1;
        }
        reclaimed
    }
}

/// What `shmsync::__test_hooks` reads and forges (the `test-hooks` feature only).
#[cfg(feature = "test-hooks")]
impl RawSemaphore {
    /// The state word and the records.
    pub(crate) fn raw_state(&self) -> (u64, [u32; RECORDS]) {
        (
            self.state.load(Ordering::Relaxed),
            core::array::from_fn(|i| self.records[i].load(Ordering::Relaxed)),
        )
    }

    /// Makes record `i` name `token`, holding a permit taken from the count if `holding`.
    pub(crate) fn forge_record(&self, i: usize, token: u32, holding: bool) {
        self.records[i].swap(token, Ordering::AcqRel);
        if holding {
            self.state.fetch_add(held_bit(i).wrapping_sub(1), Ordering::AcqRel);
        }
    }
}

/// A seeded bug for the loom models to catch (the `test-hooks` feature only): reclaimers that
/// take every holder for dead without the kernel's word, as code that trusts the absence of
/// evidence would.
pub(crate) mod mutant {
    /// Reclaimers skip asking the kernel.
    pub(crate) static JUDGE_ALL_DEAD: crate::backend::Seeded = crate::backend::Seeded::new();
}
