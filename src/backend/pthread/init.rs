//! Lazy, crash-safe, in-place initialisation of a C object in shared memory.
//!
//! `ShmMutex::new` is a `const fn` whose value is built on the stack and then moved into
//! shared memory, but a `pthread_mutex_t` must be initialised in the place where it is used.
//! So the first lock in any process initialises it, guarded by one 32-bit state word:
//!
//! ```text
//! UNINIT ──CAS──▶ INITIALIZING | token ──store──▶ READY
//!                   │          ▲
//!                   └───CAS────┘  (taken over when the token's owner is dead)
//! ```
//!
//! A process killed while it initialises leaves `INITIALIZING | token` behind (its liveness
//! token, see `crate::sys::liveness`); the next process that the kernel tells the token's owner
//! is gone takes the work over with a compare-exchange, so nobody waits forever, and an
//! initialiser that merely cannot be seen (another PID namespace, no `/proc`) is waited for.
//! Waiting for a live initialiser ignores lock deadlines: it lasts as long as
//! `pthread_mutex_init` does, unless the initialiser is stopped (SIGSTOP, a debugger).
//!
//! Notes about memory ordering: the initialiser writes the C object with plain stores, then
//! publishes `READY` with a Release store; every user checks for `READY` with an Acquire load
//! before touching the object. A taker-over overwrites whatever the dead initialiser left.

use crate::sync::{AtomicU32, Ordering};
use crate::sys::init_word::{self, State, EMPTY, READY};
use crate::sys::time::Deadline;

/// The state word that guards a lazily initialised C object.
#[repr(C)]
pub(crate) struct LazyInit {
    /// `EMPTY` (nobody has started: the object's bytes mean nothing), `INITIALIZING | token`
    /// or `READY`, as `crate::sys::init_word` defines them.
    state: AtomicU32,
}

impl LazyInit {
    /// Not initialised yet.
    pub(crate) const fn new() -> LazyInit {
        LazyInit {
            state: AtomicU32::new(EMPTY),
        }
    }

    /// Whether the object is initialised (Acquire: its bytes may then be read).
    pub(crate) fn is_ready(&self) -> bool {
        self.state.load(Ordering::Acquire) == READY
    }

    /// Returns once the object is initialised, running `init` here if this caller wins the
    /// right to do it (or takes it over from a dead process).
    ///
    /// `init` runs at most once per successful initialisation; if it panics, the word goes
    /// back to `EMPTY` so that another caller can try.
    #[inline]
    pub(crate) fn ensure(&self, init: impl FnOnce()) {
        if self.state.load(Ordering::Acquire) != READY {
            self.ensure_slow(init, None);
        }
    }

    /// Like [`ensure`](Self::ensure), but gives up (returning false) once `deadline` has
    /// passed while a live process is still initialising: for `try_lock` (a deadline of now)
    /// and `try_lock_for`, which must not wait on an initialiser that is stopped.
    #[inline]
    pub(crate) fn ensure_until(
        &self,
        init: impl FnOnce(),
        deadline: impl FnOnce() -> Deadline,
    ) -> bool {
        self.state.load(Ordering::Acquire) == READY || self.ensure_slow(init, Some(deadline()))
    }

    /// Returns whether the object is initialised (false only when `deadline` passed).
    #[cold]
    fn ensure_slow(&self, init: impl FnOnce(), deadline: Option<Deadline>) -> bool {
        let mine = init_word::initializing_by_me();
        let mut seen = self.state.load(Ordering::Acquire);
        loop {
            let abandoned = match init_word::decode(seen) {
                State::Ready => return true,
                State::Empty => true,
                State::Initializing { token } => init_word::initialiser_is_dead(token),
                // No process writes it: whatever wrote it will not finish.
                State::Invalid => true,
            };
            if abandoned {
                // EMPTY => INITIALIZING|me: this caller initialises; INITIALIZING|dead (or
                // garbage) => INITIALIZING|me: it takes a dead process's work over.
                match self.claim(seen, mine) {
                    Ok(()) => return self.run(init),
                    Err(now) => seen = now,
                }
                continue;
            }
            if deadline.is_some_and(Deadline::passed) {
                return false;
            }
            init_word::wait_for_change(&self.state, seen, deadline);
            seen = self.state.load(Ordering::Acquire);
        }
    }

    /// Compare-exchanges the state from `from` to `to`; the current state on failure.
    fn claim(&self, from: u32, to: u32) -> Result<(), u32> {
        self.state
            .compare_exchange(from, to, Ordering::Acquire, Ordering::Acquire)
            .map(drop)
    }

    /// Runs `init` as the initialiser, then publishes `READY` and wakes the waiters.
    fn run(&self, init: impl FnOnce()) -> bool {
        let reset = ResetOnUnwind(self);
        init();
        core::mem::forget(reset);
        self.publish(READY);
        true
    }

    /// Stores `state` and wakes every process waiting for the initialiser.
    fn publish(&self, state: u32) {
        init_word::publish(&self.state, state);
    }

    /// Overwrites the state word, to simulate a crashed initialiser in tests.
    #[cfg(test)]
    pub(crate) fn force(&self, state: u32) {
        self.state.store(state, Ordering::Release);
    }
}

/// Puts the state back to `EMPTY` if `init` unwinds, so other callers can retry.
struct ResetOnUnwind<'a>(&'a LazyInit);

impl Drop for ResetOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.publish(EMPTY);
    }
}

/// The state a crashed initialiser with this PID leaves behind, for tests.
#[cfg(test)]
pub(crate) fn initializing(token: u32) -> u32 {
    init_word::INITIALIZING | token
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn try_lock_does_not_wait_for_a_live_initialiser() {
        let word = LazyInit::new();
        // A live process (this one) is initialising, as if stopped half-way.
        word.force(initializing(crate::sys::liveness::me().token));
        let now = Deadline::now();
        assert!(!word.ensure_until(|| panic!("must not take over a live initialiser"), || now));
        word.force(READY);
        assert!(word.ensure_until(|| unreachable!(), || now));
    }

    #[test]
    fn a_panicking_initialiser_lets_the_next_caller_retry() {
        let word = LazyInit::new();
        let failed = std::panic::catch_unwind(|| word.ensure(|| panic!("init failed")));
        assert!(failed.is_err());
        assert!(runs_init(&word));
    }

    #[test]
    fn first_callers_initialise_once_in_turn_or_concurrently() {
        let word = LazyInit::new();
        let runs = AtomicUsize::new(0);
        let count = || {
            word.ensure(|| {
                runs.fetch_add(1, Ordering::Relaxed);
            })
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(count);
            }
        });
        count();
        count();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_dead_initialiser_is_taken_over() {
        let word = LazyInit::new();
        // A token whose slot nobody holds: its owner is gone.
        word.force(initializing(crate::sys::liveness::unheld_token()));
        assert!(runs_init(&word));
    }

    /// Whether `ensure` runs its init closure on `word`.
    fn runs_init(word: &LazyInit) -> bool {
        let mut ran = false;
        word.ensure(|| ran = true);
        ran
    }

    #[test]
    fn a_live_initialiser_is_waited_for() {
        let word = LazyInit::new();
        // This process is alive: the caller must wait until the "initialiser" publishes.
        word.force(initializing(crate::sys::liveness::me().token));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| word.ensure(|| panic!("must not initialise twice")));
            word.publish(READY);
            waiter.join().unwrap();
        });
    }
}
