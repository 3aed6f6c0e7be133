//! `ShmBarrier`, its parties and its errors: a reusable barrier for processes that breaks,
//! instead of hanging, when a party dies.

use core::fmt;
use std::time::Duration;

use crate::backend::barrier::{Failed, Place, RawBarrier};
use crate::shm_safe::fingerprint;
use crate::sync::Deadline;
use crate::{BackendId, BitPatterns, ShmSafe};

/// A barrier for `n` processes (or threads), reusable generation after generation, that
/// breaks when a party dies instead of leaving the others blocked.
///
/// A process takes part by [`join`](Self::join)ing: it gets a [`ShmBarrierParty`], which
/// names it in one of the barrier's `n` places by its liveness token. Each generation ends
/// when all `n` parties have called [`ShmBarrierParty::wait`]; one of them is told it is the
/// leader ([`BarrierWaitResult::is_leader`]), as with `std::sync::Barrier`.
///
/// **Death.** When a joined party dies (SIGKILL, abort, `exec`: whenever the kernel drops its
/// liveness lock), before or while waiting, the generation *breaks*: every party waiting gets
/// `Err(`[`BarrierError::Broken`]`)` within about 20 ms (waiters check the parties on the
/// futex owner's schedule: 1 ms, doubling to 16 ms), and each other party's next `wait`
/// returns it at once. Every party sees each break exactly once. Once all live parties have
/// seen it, the next generation starts by itself; the dead party's place is free again, so it
/// needs a new party to [`join`](Self::join) before it can complete (until then waits block,
/// or time out with [`wait_for`](ShmBarrierParty::wait_for)). A party that sees the break and
/// waits again simply waits for the others to see it too. Death is the kernel's word only:
/// a process that is stopped, or in another PID namespace, is alive.
///
/// A process that has not joined yet is not a party: nobody can tell that it died before
/// joining, so a barrier that waits for it waits (use `wait_for`). Dropping a party leaves
/// the barrier; if others have arrived in the current generation, leaving breaks it, as a
/// death would.
///
/// The barrier is 144 bytes, holds no pointer or handle, needs no init step wherever it is
/// placed, and every bit pattern is a state (forged bytes can break or release a generation,
/// never cause undefined behaviour or a timed wait that overruns its timeout). All-zero bytes
/// are not a barrier (zero parties), so it is not [`ShmZeroable`](crate::ShmZeroable). It
/// exists where the futex backend does (Linux).
///
/// # Examples
///
/// ```
/// use shmsync::{ShmBarrier, ShmBox};
///
/// let barrier = ShmBox::new(ShmBarrier::new(1)).unwrap();
/// // fork() here: each child joins and waits with the parent.
/// let mut me = barrier.join().expect("a free place");
/// for _phase in 0..3 {
///     assert!(me.wait().unwrap().is_leader());
/// }
/// ```
#[repr(C)]
pub struct ShmBarrier {
    raw: RawBarrier,
}

// SAFETY: a repr(C) wrapper of the raw barrier: u32 and u64 atomics only, no pointer or
// handle, no drop glue; every bit pattern is a state of the algorithm (see its module docs).
unsafe impl ShmSafe for ShmBarrier {
    const FINGERPRINT: u64 = fingerprint::finish(
        fingerprint::mix(fingerprint::start(fingerprint::BARRIER), 1),
        core::mem::size_of::<Self>(),
        core::mem::align_of::<Self>(),
    );
    const BACKENDS: u32 = BackendId::Futex.bit();
    const BIT_PATTERNS: BitPatterns = BitPatterns::Any;
}

impl crate::sync::MakeModel for ShmBarrier {
    fn make_model(&self) {
        self.raw.make_model();
    }
}

impl ShmBarrier {
    /// The most parties a barrier can have (its places).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::ShmBarrier::MAX_PARTIES, 32);
    /// ```
    pub const MAX_PARTIES: u32 = crate::backend::barrier::PLACES as u32;

    crate::sync::constructor! {
        /// Creates a barrier for `parties` parties.
        ///
        /// A `const fn`, except under `--cfg shmsync_loom` (see `ShmMutex::new`).
        ///
        /// # Panics
        ///
        /// When `parties` is 0 or more than [`MAX_PARTIES`](Self::MAX_PARTIES).
        ///
        /// # Examples
        ///
        /// ```
        /// let barrier = shmsync::ShmBarrier::new(4);
        /// assert_eq!(barrier.parties(), 4);
        /// ```
        pub fn new(parties: u32) -> Self {
            ShmBarrier {
                raw: RawBarrier::new(parties),
            }
        }
    }

    /// How many parties each generation waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::ShmBarrier::new(3).parties(), 3);
    /// ```
    pub fn parties(&self) -> u32 {
        self.raw.parties() as u32
    }

    /// Joins the barrier as one party: takes a free place, or the place of a party the kernel
    /// says is dead (breaking the generation it belonged to, if nobody noticed yet). `None`
    /// when live parties hold all [`parties`](Self::parties) places.
    ///
    /// A process may join more than once (one party per thread, say); each party waits on
    /// its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shmsync::ShmBarrier::new(1);
    /// let me = barrier.join().unwrap();
    /// assert!(barrier.join().is_none(), "one place, taken");
    /// drop(me);
    /// assert!(barrier.join().is_some());
    /// ```
    pub fn join(&self) -> Option<ShmBarrierParty<'_>> {
        let place = self.raw.join()?;
        Some(ShmBarrierParty {
            barrier: self,
            place,
        })
    }

    /// Whether the current generation is broken: a party died or left, and some live party
    /// has not seen it yet (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shmsync::ShmBarrier::new(2);
    /// assert!(!barrier.is_broken());
    /// ```
    pub fn is_broken(&self) -> bool {
        self.raw.is_broken()
    }

    /// The raw barrier, for the test hooks.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn raw(&self) -> &RawBarrier {
        &self.raw
    }
}

impl fmt::Debug for ShmBarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmBarrier")
            .field("parties", &self.parties())
            .field("broken", &self.is_broken())
            .finish_non_exhaustive()
    }
}

/// One process's (or thread's) place at a [`ShmBarrier`]; dropping it leaves the barrier.
///
/// Do not carry a party across `fork`: the child is another process, not this party.
///
/// # Examples
///
/// ```
/// let barrier = shmsync::ShmBarrier::new(1);
/// let mut party: shmsync::ShmBarrierParty<'_> = barrier.join().unwrap();
/// assert!(party.wait().is_ok());
/// ```
pub struct ShmBarrierParty<'a> {
    barrier: &'a ShmBarrier,
    place: Place,
}

impl ShmBarrierParty<'_> {
    /// Arrives at the barrier and blocks until all parties have arrived in this generation.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Broken`] when a party died (or left) while this generation was open:
    /// at once if the break happened before this call, otherwise as soon as it is found.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shmsync::ShmBarrier::new(1);
    /// let mut party = barrier.join().unwrap();
    /// assert!(party.wait().unwrap().is_leader());
    /// ```
    pub fn wait(&mut self) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_until(None)
    }

    /// [`wait`](Self::wait), giving up after `timeout` (CLOCK_MONOTONIC): the arrival is then
    /// taken back, so the generation still waits for this party.
    ///
    /// # Errors
    ///
    /// [`BarrierError::TimedOut`] when `timeout` passed first; [`BarrierError::Broken`] as
    /// for `wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsync::BarrierError;
    ///
    /// let barrier = shmsync::ShmBarrier::new(2);
    /// let mut party = barrier.join().unwrap();
    /// let alone = party.wait_for(Duration::from_millis(5));
    /// assert_eq!(alone.unwrap_err(), BarrierError::TimedOut);
    /// ```
    pub fn wait_for(&mut self, timeout: Duration) -> Result<BarrierWaitResult, BarrierError> {
        // A timeout too long for a timespec waits forever.
        match Deadline::after(timeout) {
            Some(deadline) => self.wait_until(Some(deadline)),
            None => self.wait(),
        }
    }

    fn wait_until(&mut self, deadline: Option<Deadline>) -> Result<BarrierWaitResult, BarrierError> {
        match self.barrier.raw.wait(self.place, deadline) {
            Ok(leader) => Ok(BarrierWaitResult { leader }),
            Err(Failed::Broken) => Err(BarrierError::Broken),
            Err(Failed::TimedOut) => Err(BarrierError::TimedOut),
        }
    }
}

impl Drop for ShmBarrierParty<'_> {
    fn drop(&mut self) {
        self.barrier.raw.leave(self.place);
    }
}

impl fmt::Debug for ShmBarrierParty<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmBarrierParty").finish_non_exhaustive()
    }
}

/// What a successful [`ShmBarrierParty::wait`] says: whether this party was the leader.
///
/// # Examples
///
/// ```
/// let barrier = shmsync::ShmBarrier::new(1);
/// let result: shmsync::BarrierWaitResult = barrier.join().unwrap().wait().unwrap();
/// assert!(result.is_leader());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this party's arrival completed the generation: exactly one party of each
    /// generation is the leader (the last to arrive).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = shmsync::ShmBarrier::new(1);
    /// assert!(barrier.join().unwrap().wait().unwrap().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// Why a [`ShmBarrierParty::wait`] failed.
///
/// # Examples
///
/// ```
/// use shmsync::BarrierError;
/// assert_eq!(BarrierError::Broken.to_string(), "a barrier party died or left");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarrierError {
    /// A party died or left while this generation was open. This party has now seen the
    /// break; its next `wait` arrives in the next generation, which starts once every live
    /// party has seen the break, and which needs a new party to join in the dead one's place.
    Broken,
    /// The timeout of [`wait_for`](ShmBarrierParty::wait_for) passed; the arrival was taken
    /// back.
    TimedOut,
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BarrierError::Broken => "a barrier party died or left",
            BarrierError::TimedOut => "timed out waiting at a barrier",
        })
    }
}

impl std::error::Error for BarrierError {}

/// Hooks for this crate's own tests: read and forge a barrier's state. Not part of the API
/// (only the `test-hooks` feature has them).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod __test_hooks {
    use super::ShmBarrier;

    /// How many places a barrier has.
    pub const PLACES: usize = crate::backend::barrier::PLACES;

    /// The state word (place bits 0..32, generation 32..62, broken 62, sleepers 63) and
    /// the places.
    pub fn state(barrier: &ShmBarrier) -> (u64, [u32; PLACES]) {
        barrier.raw().raw_state()
    }

    /// Overwrites the state word and place `i`.
    pub fn forge(barrier: &ShmBarrier, state: u64, i: usize, token: u32) {
        barrier.raw().forge(state, i, token)
    }

    /// Seeds a bug for the loom models to catch, in every barrier of the process: a break
    /// owed only by the parties waiting when it happens.
    pub fn seed_break_owed_by_waiters_only(on: bool) {
        crate::backend::barrier::OWED_BY_WAITERS_ONLY.set(on)
    }
}
