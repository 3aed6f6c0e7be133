//! `ShmCondvar`, written once over a backend's [`RawCondvar`].

use core::fmt;
use std::sync::{LockResult, PoisonError};
use std::time::{Duration, Instant};

use crate::backend::{RawCondvar, RawMutex};
use crate::mutex::ShmMutexGuard;
use crate::shm_safe::fingerprint;
use crate::sync::Deadline;
use crate::ShmSafe;

/// Whether a timed condition-variable wait returned because its timeout passed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmsync::{ShmCondvar, ShmMutex};
///
/// let (m, cv) = (ShmMutex::new(()), ShmCondvar::new());
/// let (_guard, result) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
/// assert!(result.timed_out());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because its timeout passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (m, cv) = (shmsync::ShmMutex::new(()), shmsync::ShmCondvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap();
    /// assert!(r.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable that works across processes sharing memory, generic over its
/// backend; use the aliases [`futex::ShmCondvar`](crate::futex::ShmCondvar),
/// [`pthread::ShmCondvar`](crate::pthread::ShmCondvar) or the default
/// [`ShmCondvar`](crate::ShmCondvar).
///
/// The API is `std::sync::Condvar`'s; timeouts are measured on CLOCK_MONOTONIC. A waiter
/// killed inside `wait` harms nothing: notifications never block and live waiters still wake.
/// If the one waiter a `notify_one` woke is killed before it re-takes the mutex, every other
/// waiter that was waiting returns within half a second: when others wait, `notify_one` wakes
/// the waiters that sleep without a timer, and while the condvar is in use waiters sleep
/// with a half-second re-check (such returns are spurious wake-ups, which std allows). An idle
/// waiter sleeps without any timer. Spurious wake-ups can happen, as with std.
///
/// # Several mutexes
///
/// On Linux (both backends) one condition variable may serve waiters that use different
/// mutexes, one after another or at the same time, in any processes; it never panics for
/// it (std's `Condvar` has allowed itself to, on some platforms). The condvar is one shared
/// counter that waiters of every mutex sleep on; each waiter releases and re-takes the
/// mutex of its own guard. Notifications do not look at mutexes: `notify_one` wakes one
/// waiter, whichever mutex it uses, so when waiters wait for different conditions, wake
/// them with `notify_all`, or give each condition a condvar of its own.
///
/// Outside Linux the pthread backend's condvar is a `pthread_cond_t`, and POSIX leaves
/// waits on one condition variable with two different mutexes at the same time undefined:
/// there, use one mutex at a time (changing mutex once no waiter is left is fine).
///
/// # Examples
///
/// ```
/// use shmsync::{ShmCondvar, ShmMutex};
///
/// let (m, cv) = (ShmMutex::new(true), ShmCondvar::new());
/// let guard = cv.wait_while(m.lock().unwrap(), |ready| !*ready).unwrap();
/// assert!(*guard);
/// cv.notify_all();
/// ```
#[repr(C)]
pub struct ShmCondvar<C> {
    raw: C,
}

// SAFETY: a repr(C) wrapper of a raw condition variable, which holds no pointer or handle per
// `RawCondvar`'s contract; no drop glue.
unsafe impl<C: RawCondvar> ShmSafe for ShmCondvar<C> {
    const FINGERPRINT: u64 = fingerprint::finish(
        fingerprint::mix(
            fingerprint::start(fingerprint::CONDVAR),
            <C::Mutex as RawMutex>::ID as u64,
        ),
        core::mem::size_of::<Self>(),
        core::mem::align_of::<Self>(),
    );
    const BACKENDS: u32 = <C::Mutex as RawMutex>::ID.bit();
    const BIT_PATTERNS: crate::BitPatterns = <C::Mutex as RawMutex>::ID.bit_patterns();
}

impl<C: RawCondvar> crate::sync::MakeModel for ShmCondvar<C> {
    fn make_model(&self) {
        self.raw.make_model();
    }
}

type Guard<'a, T, C> = ShmMutexGuard<'a, T, <C as RawCondvar>::Mutex>;

impl<C: RawCondvar> ShmCondvar<C> {
    /// The raw condition variable, for the test hooks.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn raw(&self) -> &C {
        &self.raw
    }

    crate::sync::constructor! {
        /// Creates a condition variable that needs no further init step wherever it is placed.
        ///
        /// A `const fn`, except under `--cfg shmsync_loom`, where it makes the loom objects
        /// behind it so that their creation happens before any other model thread uses them.
        ///
        /// # Examples
        ///
        /// ```
        /// let cv = shmsync::ShmCondvar::new();
        /// cv.notify_one();
        /// ```
        pub fn new() -> Self {
            ShmCondvar { raw: C::INIT }
        }
    }

    /// Releases the guard's mutex, sleeps until notified (or spuriously woken), and locks it
    /// again.
    ///
    /// # Errors
    ///
    /// `Err(PoisonError)` carrying the guard when the mutex is poisoned on re-acquisition,
    /// including when its holder died while this thread waited.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmCondvar, ShmMutex};
    /// let (m, cv) = (ShmMutex::new(1u32), ShmCondvar::new());
    /// let mut guard = m.lock().unwrap();
    /// while *guard == 0 {
    ///     guard = cv.wait(guard).unwrap();
    /// }
    /// ```
    pub fn wait<'a, T>(&self, guard: Guard<'a, T, C>) -> LockResult<Guard<'a, T, C>> {
        let mutex = guard.leak();
        // SAFETY: the leaked guard held the mutex, so this thread holds it.
        let (acquired, _) = unsafe { self.raw.wait(mutex.raw_lock(), None) };
        // SAFETY: `wait` returns holding the mutex again, which no guard owns (leaked above).
        unsafe { mutex.guard(acquired) }
    }

    /// Waits while `condition` returns true, re-checking it after every wake-up.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmCondvar, ShmMutex};
    /// let (m, cv) = (ShmMutex::new(3u32), ShmCondvar::new());
    /// let guard = cv.wait_while(m.lock().unwrap(), |n| *n < 3).unwrap();
    /// assert_eq!(*guard, 3);
    /// ```
    pub fn wait_while<'a, T, F>(
        &self,
        mut guard: Guard<'a, T, C>,
        mut condition: F,
    ) -> LockResult<Guard<'a, T, C>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait`](Self::wait), but returns once `timeout` (CLOCK_MONOTONIC) has passed.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait), carrying the guard and the timeout result.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsync::{ShmCondvar, ShmMutex};
    /// let (m, cv) = (ShmMutex::new(()), ShmCondvar::new());
    /// let (_guard, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(2)).unwrap();
    /// assert!(r.timed_out());
    /// ```
    pub fn wait_timeout<'a, T>(
        &self,
        guard: Guard<'a, T, C>,
        timeout: Duration,
    ) -> LockResult<(Guard<'a, T, C>, WaitTimeoutResult)> {
        self.wait_deadline(guard, Deadline::after(timeout))
    }

    /// Waits while `condition` returns true, for at most `timeout` in all.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait), carrying the guard and the timeout result.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmsync::{ShmCondvar, ShmMutex};
    /// let (m, cv) = (ShmMutex::new(false), ShmCondvar::new());
    /// let (guard, r) = cv
    ///     .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(2), |done| !*done)
    ///     .unwrap();
    /// assert!(r.timed_out() && !*guard);
    /// ```
    pub fn wait_timeout_while<'a, T, F>(
        &self,
        guard: Guard<'a, T, C>,
        timeout: Duration,
        condition: F,
    ) -> LockResult<(Guard<'a, T, C>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        self.wait_deadline_while(guard, Deadline::after(timeout), condition)
    }

    /// Like [`wait`](Self::wait), but returns once `deadline` has passed.
    ///
    /// The deadline is turned into CLOCK_MONOTONIC time as
    /// [`ShmMutex::try_lock_until`](crate::generic::ShmMutex::try_lock_until) says: the
    /// time left from `Instant::now()` is added to a CLOCK_MONOTONIC reading made just after.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait), carrying the guard and the timeout result.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shmsync::{ShmCondvar, ShmMutex};
    /// let (m, cv) = (ShmMutex::new(()), ShmCondvar::new());
    /// let deadline = Instant::now() + Duration::from_millis(2);
    /// let (_guard, r) = cv.wait_until(m.lock().unwrap(), deadline).unwrap();
    /// assert!(r.timed_out());
    /// ```
    pub fn wait_until<'a, T>(
        &self,
        guard: Guard<'a, T, C>,
        deadline: Instant,
    ) -> LockResult<(Guard<'a, T, C>, WaitTimeoutResult)> {
        self.wait_deadline(guard, deadline_of(deadline))
    }

    /// Waits while `condition` returns true, until `deadline` at the latest (turned into
    /// CLOCK_MONOTONIC time as for [`wait_until`](Self::wait_until)).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait), carrying the guard and the timeout result.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shmsync::{ShmCondvar, ShmMutex};
    /// let (m, cv) = (ShmMutex::new(0u32), ShmCondvar::new());
    /// let deadline = Instant::now() + Duration::from_millis(2);
    /// let (guard, r) = cv.wait_while_until(m.lock().unwrap(), deadline, |n| *n == 0).unwrap();
    /// assert!(r.timed_out() && *guard == 0);
    /// ```
    pub fn wait_while_until<'a, T, F>(
        &self,
        guard: Guard<'a, T, C>,
        deadline: Instant,
        condition: F,
    ) -> LockResult<(Guard<'a, T, C>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        self.wait_deadline_while(guard, deadline_of(deadline), condition)
    }

    /// Wakes one waiter, in any process, and returns whether it woke one that was asleep, as
    /// parking_lot's `notify_one` does. Never blocks, even if waiters have died.
    ///
    /// The answer counts waiters asleep in the kernel. A waiter that has released its mutex
    /// but not yet fallen asleep also returns from its wait (the notification is not lost),
    /// but `false` does not tell about it. Outside Linux the pthread backend's
    /// `pthread_cond_signal` does not say whether it woke anyone, and this returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cv = shmsync::ShmCondvar::new();
    /// # if cfg!(target_os = "linux") {
    /// assert!(!cv.notify_one()); // nobody waits
    /// # }
    /// ```
    pub fn notify_one(&self) -> bool {
        self.raw.notify_one()
    }

    /// Wakes every waiter, in every process, and returns how many were asleep, as
    /// parking_lot's `notify_all` does. Never blocks, even if waiters have died.
    ///
    /// The count is of waiters asleep in the kernel. Waiters that have released their mutex
    /// but not yet fallen asleep also return from their waits, without being counted.
    /// Outside Linux the pthread backend's `pthread_cond_broadcast` does not say how many it
    /// woke, and this returns 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::ShmCondvar::new().notify_all(), 0); // nobody waits
    /// ```
    pub fn notify_all(&self) -> usize {
        self.raw.notify_all()
    }

    fn wait_deadline<'a, T>(
        &self,
        guard: Guard<'a, T, C>,
        deadline: Option<Deadline>,
    ) -> LockResult<(Guard<'a, T, C>, WaitTimeoutResult)> {
        let mutex = guard.leak();
        // SAFETY: the leaked guard held the mutex, so this thread holds it; `wait` re-acquires it.
        let (acquired, timed_out) = unsafe { self.raw.wait(mutex.raw_lock(), deadline) };
        let timed_out = timed_out || deadline.is_some_and(Deadline::passed);
        // SAFETY: `wait` returns holding the mutex again, which no guard owns (leaked above).
        match unsafe { mutex.guard(acquired) } {
            Ok(guard) => Ok((guard, WaitTimeoutResult(timed_out))),
            Err(poisoned) => Err(PoisonError::new((
                poisoned.into_inner(),
                WaitTimeoutResult(timed_out),
            ))),
        }
    }

    /// Waits while `condition` returns true, until `deadline` (`None`: no limit).
    fn wait_deadline_while<'a, T, F>(
        &self,
        mut guard: Guard<'a, T, C>,
        deadline: Option<Deadline>,
        mut condition: F,
    ) -> LockResult<(Guard<'a, T, C>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.is_some_and(Deadline::passed) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = self.wait_deadline(guard, deadline)?.0;
        }
    }
}

/// `deadline` as a CLOCK_MONOTONIC deadline: the time left from `Instant::now()`, from a
/// reading of that clock made just after; `None` (no limit) when it does not fit.
fn deadline_of(deadline: Instant) -> Option<Deadline> {
    Deadline::after(deadline.saturating_duration_since(Instant::now()))
}

impl<C: RawCondvar> Default for ShmCondvar<C> {
    fn default() -> Self {
        ShmCondvar::new()
    }
}

impl<C: RawCondvar> fmt::Debug for ShmCondvar<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmCondvar")
            .field("backend", &<C::Mutex as RawMutex>::ID)
            .finish_non_exhaustive()
    }
}
