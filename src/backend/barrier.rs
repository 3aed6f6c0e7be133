//! The barrier's state machine: one 64-bit state word, a futex wake counter and a table of
//! places, one per party, each naming the process that joined it by its liveness token.
//!
//! The state word holds one bit per place (bits 0..32), the generation (bits 32..62),
//! [`BROKEN`] (bit 62) and [`SLEEPERS`] (bit 63). While the generation is open, place `i`'s
//! bit says that its party has arrived. The arrival that sets the last of the `n` bits
//! completes the generation in the same compare-exchange: bits cleared, generation + 1.
//!
//! A joined party that dies breaks the generation. Waiters find it on the futex owner's
//! schedule (1 ms, doubling to 16 ms): a place naming a process the kernel says is dead is
//! taken over (compare-exchange `dead token => my token`, so one process evicts it) and the
//! generation is broken: [`BROKEN`] is set and the place bits are *reloaded* with every
//! joined place, meaning "has yet to see the break". Each party's next look at the barrier
//! (a waiter woken by the break, or its next `wait`) clears its bit and returns `Broken`; the
//! one that clears the last bit starts the next generation (bits clear, [`BROKEN`] clear,
//! generation + 1). So every party sees each break exactly once, and a waiter that sees the
//! generation move without having seen [`BROKEN`] knows the generation completed: it cannot
//! have been broken and reset behind its back, since the reset waited for its bit. A party
//! that has seen the break and waits again sleeps until the others have seen it too.
//!
//! Invariant: a place's bit is set only by the party that owns the place (or by a break,
//! while the place is joined), and cleared before the place is freed. A free place whose bit
//! is set is a leftover (a party left while a break was being decided) or forged; whoever
//! finds one claims the place first, then clears the bit. Every bit pattern is a state: a
//! forged one can break or complete a generation early, never make the code touch other
//! memory or spin without sleeping.
//!
//! Notes about memory ordering: arrivals are `Release` and the completing arrival `AcqRel`,
//! and every change of the state word is a read-modify-write, so the completion carries every
//! arrival's writes; waiters read the state with `Acquire` and see them. `wakes` is bumped
//! with `Release` after the state change and read with `Acquire` before the re-check, as in
//! the semaphore: a waiter never sleeps on a count bumped for a change it missed.

use crate::backend::futex::owner::Patrol;
use crate::sync::liveness::{self, me};
use crate::sync::{
    word, AtomicU32, AtomicU64, Deadline, MakeModel, Ordering, SpinWait, Wake, MODELLED,
};
use crate::sys::liveness::{Me, Verdict, TOKEN_MASK};

/// How many places a barrier has: its most parties. The model has 3.
pub(crate) const PLACES: usize = if MODELLED { 3 } else { 32 };

/// Bits 0..32: one bit per place.
const BITS: u64 = u32::MAX as u64;
/// One generation, in the state word.
const GEN_ONE: u64 = 1 << 32;
/// Bits 32..62: the generation, counting completions and breaks.
const GEN: u64 = ((1 << 30) - 1) << 32;
/// The generation is broken; the bits say which parties have yet to see it.
const BROKEN: u64 = 1 << 62;
/// Set while a waiter may sleep on `wakes`: whoever completes, breaks or resets wakes them.
const SLEEPERS: u64 = 1 << 63;

const _: () = assert!(GEN & (BITS | BROKEN | SLEEPERS) == 0 && PLACES <= 32);

/// The raw barrier in shared memory.
#[repr(C)]
pub(crate) struct RawBarrier {
    /// Place bits, generation, [`BROKEN`] and [`SLEEPERS`].
    state: AtomicU64,
    /// Bumped when the generation completes, breaks or restarts while someone may sleep.
    wakes: AtomicU32,
    /// How many parties a generation needs (read clamped to `1..=PLACES`).
    parties: AtomicU32,
    /// The token of the process that joined each place, or 0.
    places: [AtomicU32; PLACES],
}

// 144 bytes, aligned to 8 (the model's table is smaller).
const _: () = assert!(
    MODELLED
        || (core::mem::size_of::<RawBarrier>() == 144 && core::mem::align_of::<RawBarrier>() == 8)
);

impl MakeModel for RawBarrier {
    fn make_model(&self) {
        self.state.make_model();
        self.wakes.make_model();
        self.parties.make_model();
        self.places.iter().for_each(MakeModel::make_model);
    }
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: AtomicU32 = AtomicU32::new(0);

/// A joined party: the index of its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place(usize);

/// How a wait ended badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    Broken,
    TimedOut,
}

/// The generation bits of `state`.
const fn generation(state: u64) -> u64 {
    state & GEN
}

/// `state` moved to the next generation, open and empty.
const fn next_generation(state: u64) -> u64 {
    generation(state).wrapping_add(GEN_ONE) & GEN
}

impl RawBarrier {
    /// A barrier for `parties` parties.
    ///
    /// # Panics
    ///
    /// When `parties` is 0 or more than [`PLACES`].
    pub(crate) const fn new(parties: u32) -> Self {
        assert!(
            parties >= 1 && parties as usize <= PLACES,
            "ShmBarrier::new: parties must be 1..=MAX_PARTIES"
        );
        RawBarrier {
            state: AtomicU64::new(0),
            wakes: AtomicU32::new(0),
            parties: AtomicU32::new(parties),
            places: [FREE; PLACES],
        }
    }

    /// How many parties a generation needs.
    pub(crate) fn parties(&self) -> usize {
        (self.parties.load(Ordering::Relaxed) as usize).clamp(1, PLACES)
    }

    /// The bits of every place in use.
    fn full(&self) -> u64 {
        (1u64 << self.parties()) - 1
    }

    /// Whether the current generation is broken.
    pub(crate) fn is_broken(&self) -> bool {
        self.state.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// Takes a free place, or the place of a party the kernel says is dead (breaking the
    /// generation it belonged to); `None` when live parties hold every place.
    pub(crate) fn join(&self) -> Option<Place> {
        let me = me();
        for i in 0..self.parties() {
            if self.places[i].load(Ordering::Relaxed) == 0
                // free => me
                && self.places[i]
                    .compare_exchange(0, me.token, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // A free place's bit is a leftover or forged; the joiner owes nothing.
                self.clear_bit(i);
                return Some(Place(i));
            }
        }
        let i = (0..self.parties()).find(|&i| self.take_if_dead(i, me))?;
        // The dead party's generation breaks; this newcomer owes nothing.
        self.break_generation();
        self.clear_bit(i);
        Some(Place(i))
    }

    /// Leaves the barrier: a generation that others have arrived in breaks (it could not
    /// complete without this party), then the place is freed.
    pub(crate) fn leave(&self, place: Place) {
        let others = self.full() & !(1 << place.0);
        let state = self.state.load(Ordering::Relaxed);
        if state & BROKEN == 0 && state & others != 0 {
            self.break_generation();
        }
        self.clear_bit(place.0);
        self.places[place.0].store(0, Ordering::Release);
    }

    /// Arrives at the barrier as the party at `place` and waits until the generation
    /// completes (`Ok(true)` for the arrival that completed it), breaks, or `deadline` passes.
    pub(crate) fn wait(&self, place: Place, deadline: Option<Deadline>) -> Result<bool, Failed> {
        let me = me();
        let mut patrol = Patrol::new();
        loop {
            let gen = match self.arrive(place) {
                Arrival::Completed => return Ok(true),
                Arrival::Waiting(gen) => gen,
                Arrival::Broken => return Err(Failed::Broken),
                Arrival::AfterBreak(seen) => {
                    self.sleep(seen, me, &mut patrol, deadline)?;
                    continue;
                }
            };
            match self.await_generation(place, gen, me, &mut patrol, deadline) {
                Some(outcome) => return outcome,
                None => continue,
            }
        }
    }

    /// One arrival attempt.
    fn arrive(&self, place: Place) -> Arrival {
        let bit = 1u64 << place.0;
        let full = self.full();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & BROKEN != 0 {
                if state & bit != 0 {
                    self.clear_bit(place.0);
                    return Arrival::Broken;
                }
                if state & full == 0 {
                    // Broken, and nobody has yet to see it (forged): start the next one.
                    self.restart(state);
                    state = self.state.load(Ordering::Relaxed);
                    continue;
                }
                return Arrival::AfterBreak(state);
            }
            let arrived = (state | bit) & full == full;
            // bits + mine => bits + mine, or all bits => next generation
            let (new, order) = if arrived {
                (next_generation(state), Ordering::AcqRel)
            } else {
                (state | bit, Ordering::Release)
            };
            match self.transition(state, new, order) {
                Ok(_) if arrived => return Arrival::Completed,
                Ok(_) => return Arrival::Waiting(generation(state)),
                Err(now) => state = now,
            }
        }
    }

    /// Waits, arrived in generation `gen`, for it to complete or break. `None` when the
    /// arrival vanished (only forged bytes do that): arrive again.
    fn await_generation(
        &self,
        place: Place,
        gen: u64,
        me: Me,
        patrol: &mut Patrol,
        deadline: Option<Deadline>,
    ) -> Option<Result<bool, Failed>> {
        let bit = 1u64 << place.0;
        // A few rounds of pause, then of sched_yield (which lets the others arrive when they
        // share this CPU), before sleeping.
        let mut spin = SpinWait::new();
        loop {
            let state = self.state.load(Ordering::Acquire);
            if generation(state) != gen {
                return Some(Ok(false));
            }
            if state & BROKEN != 0 {
                self.clear_bit(place.0);
                return Some(Err(Failed::Broken));
            }
            if state & bit == 0 {
                return None;
            }
            if spin.spin() {
                continue;
            }
            if self.sleep(state, me, patrol, deadline).is_err() {
                return Some(self.withdraw(place, gen));
            }
        }
    }

    /// After a timeout: takes the arrival back, unless the generation ended meanwhile.
    fn withdraw(&self, place: Place, gen: u64) -> Result<bool, Failed> {
        let bit = 1u64 << place.0;
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if generation(state) != gen {
                return Ok(false);
            }
            if state & BROKEN != 0 {
                self.clear_bit(place.0);
                return Err(Failed::Broken);
            }
            // bits + mine => bits
            match self.transition(state, state & !bit, Ordering::Acquire) {
                Ok(_) => return Err(Failed::TimedOut),
                Err(now) => state = now,
            }
        }
    }

    /// Sleeps while the generation and [`BROKEN`] are as in `seen`, checking the parties'
    /// liveness on the patrol's schedule; `Err` once `deadline` has passed.
    fn sleep(
        &self,
        seen: u64,
        me: Me,
        patrol: &mut Patrol,
        deadline: Option<Deadline>,
    ) -> Result<(), Failed> {
        if let Some(seq) = self.prepare_sleep(seen) {
            let wake_by = patrol.next_wake(seen as u32, deadline);
            let timed_out = word::wait(&self.wakes, seq, wake_by) == Wake::TimedOut;
            if patrol.check_due(timed_out) {
                self.evict_the_dead(me);
            }
        }
        // Checked on every round, so that a stream of changes cannot keep a timed wait busy.
        match deadline {
            Some(d) if d.passed() => Err(Failed::TimedOut),
            _ => Ok(()),
        }
    }

    /// Sets [`SLEEPERS`] and returns the `wakes` count to sleep on, or `None` when the state
    /// moved on from `seen` so that sleeping could miss it.
    fn prepare_sleep(&self, seen: u64) -> Option<u32> {
        let (seq, now) = crate::backend::announce_sleep(&self.state, SLEEPERS, &self.wakes)?;
        let moved = (now ^ seen) & (GEN | BROKEN) != 0 || now & SLEEPERS == 0;
        (!moved).then_some(seq)
    }

    /// Compare-exchange `state => new`; a change of generation or of [`BROKEN`] clears
    /// [`SLEEPERS`] and wakes the sleepers.
    fn transition(&self, state: u64, new: u64, order: Ordering) -> Result<u64, u64> {
        let wakes = (state ^ new) & (GEN | BROKEN) != 0;
        let new = if wakes { new & !SLEEPERS } else { new };
        let old = self
            .state
            .compare_exchange(state, new, order, Ordering::Relaxed)?;
        if wakes && old & SLEEPERS != 0 {
            self.wakes.fetch_add(1, Ordering::Release);
            word::wake_all(&self.wakes);
        }
        Ok(old)
    }

    /// Clears place `i`'s bit; the last bit of a broken generation starts the next one.
    fn clear_bit(&self, i: usize) {
        let bit = 1u64 << i;
        let mut state = self.state.load(Ordering::Relaxed);
        while state & bit != 0 {
            let cleared = state & !bit;
            let new = if cleared & BROKEN != 0 && cleared & self.full() == 0 {
                next_generation(state)
            } else {
                cleared
            };
            // bits + i => bits (or the next generation)
            match self.transition(state, new, Ordering::AcqRel) {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    /// Starts the next generation after the broken one `state`, if it is still current.
    fn restart(&self, state: u64) {
        let _ = self.transition(state, next_generation(state), Ordering::AcqRel);
    }

    /// Breaks the current generation unless it is broken already: every joined party has yet
    /// to see the break.
    fn break_generation(&self) {
        let joined = (0..self.parties())
            .filter(|&i| self.places[i].load(Ordering::Relaxed) != 0)
            .fold(0u64, |bits, i| bits | 1 << i);
        let mut state = self.state.load(Ordering::Relaxed);
        while state & BROKEN == 0 {
            let owed = if OWED_BY_WAITERS_ONLY.is_on() {
                state & BITS
            } else {
                joined
            };
            // open => broken, owed by every joined party
            match self.transition(state, generation(state) | BROKEN | owed, Ordering::AcqRel) {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    /// Evicts every party the kernel says is dead, and clears leftover bits of free places.
    #[cold]
    fn evict_the_dead(&self, me: Me) {
        for i in 0..self.parties() {
            if self.take_if_dead(i, me) {
                // Freed before the break shows, so that a party joining after it finds the
                // place free.
                self.clear_bit(i);
                self.places[i].store(0, Ordering::Release);
                self.break_generation();
            } else if self.places[i].load(Ordering::Relaxed) == 0
                && self.state.load(Ordering::Relaxed) & (1 << i) != 0
                // free => me, so that nobody joins while the leftover bit goes
                && self.places[i]
                    .compare_exchange(0, me.token, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                self.clear_bit(i);
                self.places[i].store(0, Ordering::Release);
            }
        }
    }

    /// Takes place `i` over if it names a dead process (or holds no token at all: forged);
    /// the place then names this process.
    fn take_if_dead(&self, i: usize, me: Me) -> bool {
        let owner = self.places[i].load(Ordering::Acquire);
        let forged = owner & !TOKEN_MASK != 0;
        if owner == 0 || !(forged || liveness::judge(owner) == Verdict::Dead) {
            return false;
        }
        // dead owner => me: of several processes that find it, one evicts it.
        self.places[i]
            .compare_exchange(owner, me.token, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

/// What one arrival attempt found.
enum Arrival {
    /// This arrival completed the generation.
    Completed,
    /// Arrived in this generation (its bits); wait for it to end.
    Waiting(u64),
    /// The generation is broken and this party had yet to see it: it has now.
    Broken,
    /// Broken, already seen by this party, not yet by all: wait for the next generation.
    AfterBreak(u64),
}

/// What `shmsync::__barrier_test_hooks` reads and forges (the `test-hooks` feature only).
#[cfg(feature = "test-hooks")]
impl RawBarrier {
    /// The state word and the places.
    pub(crate) fn raw_state(&self) -> (u64, [u32; PLACES]) {
        crate::backend::snapshot(&self.state, &self.places)
    }

    /// Overwrites the state word and place `i`.
    pub(crate) fn forge(&self, state: u64, i: usize, token: u32) {
        self.state.store(state, Ordering::SeqCst);
        self.places[i].store(token, Ordering::SeqCst);
    }
}

/// A seeded bug for the loom models to catch (the `test-hooks` feature only): a break that
/// only the parties waiting at that moment must see, so that a party arriving later can be
/// let into the next generation without ever hearing of the death.
pub(crate) static OWED_BY_WAITERS_ONLY: crate::backend::Mutant = crate::backend::Mutant::new();
