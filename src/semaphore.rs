//! `ShmSemaphore` and its permit: a counting semaphore whose guard permits come back when
//! their process dies.

use core::fmt;
use std::time::Duration;

use crate::backend::semaphore::{Held, RawSemaphore};
use crate::shm_safe::fingerprint;
use crate::sync::Deadline;
use crate::{BackendId, BitPatterns, ShmSafe};

/// A counting semaphore shared by processes, with `SEM_UNDO` for its guards.
///
/// [`acquire`](Self::acquire) takes one permit and returns a [`ShmSemaphorePermit`] that gives
/// it back when dropped, or when its process dies, however it dies (SIGKILL, abort, `exec`).
/// [`release`](Self::release) adds permits that no guard held: a producer posting items to
/// consumers in other processes, as with `sem_post`. POSIX semaphores have no way to give back
/// what a dead process held; this one does, for permits held as guards.
///
/// A permit is tracked in one of the semaphore's 31 holder records, so at most 31 permits are
/// held as guards at once; a 32nd acquirer waits (polling every few milliseconds) until a guard
/// is dropped, even if more permits are available. Permits taken with
/// [`ShmSemaphorePermit::forget`] or given by `release` are not limited. A dead holder's permit
/// comes back when another process next waits for one (within about 16 ms of sleeping), or
/// calls `try_acquire`.
///
/// The semaphore is 144 bytes, holds no pointer or handle, needs no init step wherever it is
/// placed, and every bit pattern is a state. It exists where the futex backend does (Linux).
///
/// # Examples
///
/// ```
/// use shmsync::{ShmBox, ShmSemaphore};
///
/// let slots = ShmBox::new(ShmSemaphore::new(2)).unwrap();
/// // fork() here: children share `slots` with the parent.
/// let first = slots.acquire();
/// let _second = slots.acquire();
/// assert!(slots.try_acquire().is_none());
/// drop(first);
/// assert_eq!(slots.available_permits(), 1);
/// ```
#[repr(C)]
pub struct ShmSemaphore {
    raw: RawSemaphore,
}

// SAFETY: a repr(C) wrapper of the raw semaphore: u32 and u64 atomics only, no pointer or
// handle, no drop glue; every bit pattern is a state of the algorithm (see its module docs).
unsafe impl ShmSafe for ShmSemaphore {
    const FINGERPRINT: u64 = fingerprint::finish(
        fingerprint::mix(fingerprint::start(fingerprint::SEMAPHORE), 1),
        core::mem::size_of::<Self>(),
        core::mem::align_of::<Self>(),
    );
    const BACKENDS: u32 = BackendId::Futex.bit();
    const BIT_PATTERNS: BitPatterns = BitPatterns::Any;
}

impl crate::sync::MakeModel for ShmSemaphore {
    fn make_model(&self) {
        self.raw.make_model();
    }
}

impl ShmSemaphore {
    /// The most permits a semaphore counts.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::ShmSemaphore::MAX_PERMITS, i32::MAX as u32);
    /// ```
    pub const MAX_PERMITS: u32 = crate::backend::semaphore::MAX_PERMITS;

    /// How many permits can be held as guards at once (the holder records).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::ShmSemaphore::MAX_GUARDS, 31);
    /// ```
    pub const MAX_GUARDS: u32 = crate::backend::semaphore::RECORDS as u32;

    crate::sync::constructor! {
        /// Creates a semaphore with `permits` available.
        ///
        /// A `const fn`, except under `--cfg shmsync_loom` (see `ShmMutex::new`).
        ///
        /// # Panics
        ///
        /// When `permits` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
        ///
        /// # Examples
        ///
        /// ```
        /// let sem = shmsync::ShmSemaphore::new(3);
        /// assert_eq!(sem.available_permits(), 3);
        /// ```
        pub fn new(permits: u32) -> Self {
            ShmSemaphore {
                raw: RawSemaphore::new(permits),
            }
        }
    }

    /// Blocks until a permit is available and takes it.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shmsync::ShmSemaphore::new(1);
    /// let permit = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> ShmSemaphorePermit<'_> {
        match self.raw.acquire(None) {
            Some(held) => self.permit(held),
            None => unreachable!("an acquire without a deadline timed out"),
        }
    }

    /// Takes a permit if one is available now; `None` otherwise. Gives back the permits of
    /// holders found dead first, asking the kernel at most once a millisecond per thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shmsync::ShmSemaphore::new(1);
    /// let _permit = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<ShmSemaphorePermit<'_>> {
        self.raw.try_acquire().map(|held| self.permit(held))
    }

    /// Blocks until a permit is taken or `timeout` passes (CLOCK_MONOTONIC); `None` when it
    /// passes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = shmsync::ShmSemaphore::new(0);
    /// assert!(sem.try_acquire_for(Duration::from_millis(5)).is_none());
    /// sem.release(1);
    /// assert!(sem.try_acquire_for(Duration::from_millis(5)).is_some());
    /// ```
    pub fn try_acquire_for(&self, timeout: Duration) -> Option<ShmSemaphorePermit<'_>> {
        // A timeout too long for a timespec waits forever.
        let held = self.raw.acquire(Deadline::after(timeout))?;
        Some(self.permit(held))
    }

    /// Adds `n` permits that no guard held, waking waiters: the producer's half of a
    /// producer/consumer pair (a consumer takes them with `acquire` and
    /// [`forget`](ShmSemaphorePermit::forget)s them).
    ///
    /// # Panics
    ///
    /// When that would make more than [`MAX_PERMITS`](Self::MAX_PERMITS) available; nothing
    /// is added then.
    ///
    /// # Examples
    ///
    /// ```
    /// let items = shmsync::ShmSemaphore::new(0);
    /// items.release(2);
    /// items.acquire().forget();
    /// assert_eq!(items.available_permits(), 1);
    /// ```
    pub fn release(&self, n: u32) {
        self.raw.release(n);
    }

    /// The permits available now (a snapshot: other processes may change it at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shmsync::ShmSemaphore::new(4);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn available_permits(&self) -> u32 {
        self.raw.available()
    }

    fn permit(&self, held: Held) -> ShmSemaphorePermit<'_> {
        ShmSemaphorePermit { sem: self, held }
    }

    /// The raw semaphore, for the test hooks.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn raw(&self) -> &RawSemaphore {
        &self.raw
    }
}

impl fmt::Debug for ShmSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmSemaphore")
            .field("available_permits", &self.available_permits())
            .finish_non_exhaustive()
    }
}

/// One permit of a [`ShmSemaphore`], given back when dropped or when its process dies.
///
/// Do not carry a permit across `fork`: the child is another process, and dropping its copy
/// would give back the parent's permit.
///
/// # Examples
///
/// ```
/// let sem = shmsync::ShmSemaphore::new(1);
/// {
///     let _permit: shmsync::ShmSemaphorePermit<'_> = sem.acquire();
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "dropping the permit gives it back at once"]
pub struct ShmSemaphorePermit<'a> {
    sem: &'a ShmSemaphore,
    held: Held,
}

impl ShmSemaphorePermit<'_> {
    /// Keeps the permit taken for good: it is no longer tracked, so neither dropping nor the
    /// death of this process gives it back (only a [`release`](ShmSemaphore::release) does).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = shmsync::ShmSemaphore::new(1);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release(1);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: the permit's record came from this semaphore's acquire in this process and
        // is given up once: `this` is never dropped.
        unsafe { this.sem.raw.forget_held(this.held) };
    }
}

impl Drop for ShmSemaphorePermit<'_> {
    fn drop(&mut self) {
        // SAFETY: the record came from this semaphore's acquire in this process; `forget`
        // skips this drop, so it is given back once.
        unsafe { self.sem.raw.release_held(self.held) };
    }
}

impl fmt::Debug for ShmSemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmSemaphorePermit").finish_non_exhaustive()
    }
}

/// Hooks for this crate's own tests: read and forge a semaphore's state word and holder
/// records. Not part of the API (only the `test-hooks` feature has them); forging breaks the
/// semaphore's guarantees.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod __test_hooks {
    use super::ShmSemaphore;

    /// How many holder records a semaphore has.
    pub const RECORDS: usize = crate::backend::semaphore::RECORDS;

    /// The state word (permits in bits 0..32, held bits above) and the holder records.
    pub fn state(sem: &ShmSemaphore) -> (u64, [u32; RECORDS]) {
        sem.raw().raw_state()
    }

    /// Seeds a bug for the loom models to catch, in every semaphore of the process: reclaimers
    /// take every holder for dead, without asking the kernel.
    pub fn seed_reclaim_live_bug(on: bool) {
        crate::backend::semaphore::mutant::JUDGE_ALL_DEAD.set(on)
    }

    /// Makes record `i` name `token`; with `holding`, moves one permit from the count into it.
    pub fn forge_record(sem: &ShmSemaphore, i: usize, token: u32, holding: bool) {
        sem.raw().forge_record(i, token, holding)
    }
}
