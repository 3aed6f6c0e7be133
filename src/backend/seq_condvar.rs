//! A condition variable made of a shared futex sequence counter, a count of sleepers and a
//! "busy" stamp.
//!
//! Notes about memory ordering: the counter carries no data. A waiter reads it (Relaxed)
//! while still holding the mutex, then unlocks (Release). A notifier changes the protected
//! state under the mutex, then increments the counter. If that increment happened before the
//! waiter's read, the notifier's change was made before the waiter took the mutex and the
//! waiter saw it; otherwise the futex wait finds the counter changed and returns at once. A
//! waiter returns only once the counter differs from the value it read (or its deadline
//! passed); signals and spurious wakes put it back to sleep. No waiter has state in shared
//! memory that anyone waits for, so a waiter killed inside `wait` blocks nobody.
//!
//! One notification could still go to waste: `notify_one` wakes one sleeper, and if that one
//! is killed after the kernel woke it but before it re-took the mutex, the others would sleep
//! on. What keeps it from being lost, without every sleeper waking up on a timer:
//!
//! - [`SeqCondvar::sleepers`] counts the waiters inside `wait`: a waiter adds itself while it
//!   still holds the mutex, before reading the counter, and takes itself off once it holds
//!   the mutex again. A waiter killed inside `wait` leaves the count one too high.
//! - A notifier that finds the count at zero after moving the counter makes no wake call at
//!   all (see [`SeqCondvar::bump`] for why none can be needed), as glibc's condvar skips the
//!   system call when nobody waits.
//! - After waking one sleeper, `notify_one` reads the count. The woken one is in it until it
//!   holds the mutex again, and so is every waiter that slept when the counter moved and has
//!   not returned. A count below 2 means the woken one is alone, or has already re-taken the
//!   mutex (the notification has arrived): nothing can be lost, and nothing more is done (the
//!   hand-off between two processes).
//! - A count of 2 or more: every other sleeper must be able to notice should the woken one
//!   die. A sleeper sleeps *untimed* (tag [`UNTIMED`], no timer) or *timed* (tag [`TIMED`], a
//!   check every [`RECHECK`]). The notifier wakes every untimed sleeper
//!   ([`word::wake_tagged`]): each finds the counter moved and returns, a spurious wake-up, as
//!   condvars allow. Timed sleepers are left asleep: within [`RECHECK`] each looks at the
//!   counter, finds it moved and returns. So whatever happens to the woken one, every waiter
//!   that slept when the notification was made returns within [`RECHECK`].
//! - To keep that herd rare, the notifier stamps [`SeqCondvar::busy`] with the time, and a
//!   sleeper sleeps timed while that stamp is less than [`BUSY`] old. On a condvar in use,
//!   waiters are timed (as every waiter used to be) and a `notify_one` wakes one; once it
//!   falls idle, the timers run out and idle waiters sleep without any.
//!
//! The count and the stamp only choose between correct ways to sleep and to notify: a count
//! too high (a waiter killed inside `wait`, forged bytes) costs a wake call that finds nobody
//! and, with another waiter, a herd call and timers while notifications go on (what every
//! wait cost before); a stamp of any value costs extra wake-ups or a herd. Neither ever loses
//! a notification, as long as the count is not below the number of waiters inside `wait`. A notifier killed
//! inside `notify_one` may leave the untimed sleepers unwoken, as one killed just before
//! calling it would.

use core::time::Duration;

use crate::backend::{Acquired, RawCondvar, RawMutex, Sealed};
use crate::sync::{fence, word, AtomicU32, Deadline, MakeModel, Ordering, MODELLED};

/// How often a timed sleeper checks the counter without being woken.
const RECHECK: Duration = Duration::from_millis(500);
/// How long, in milliseconds, after a `notify_one` that left others asleep new sleepers
/// sleep timed.
const BUSY: u32 = 1000;
/// The futex tag of a sleeper with a [`RECHECK`] timer.
const TIMED: u32 = 1;
/// The futex tag of a sleeper without one, which a `notify_one` that leaves others asleep
/// must wake.
const UNTIMED: u32 = 2;

/// A futex sequence counter usable with any raw mutex `M`.
#[repr(C)]
pub struct SeqCondvar<M> {
    /// Incremented by every notification; the word everyone sleeps on.
    seq: AtomicU32,
    /// How many waiters are inside `wait` (between counting themselves and re-taking the
    /// mutex); never fewer.
    sleepers: AtomicU32,
    /// When a `notify_one` last left sleepers behind: CLOCK_MONOTONIC milliseconds with the
    /// low bit set; 0 for never.
    busy: AtomicU32,
    _mutex: core::marker::PhantomData<fn(&M)>,
}

const _: () = assert!(MODELLED || core::mem::size_of::<SeqCondvar<()>>() == 12);

impl<M> Sealed for SeqCondvar<M> {}

impl<M> MakeModel for SeqCondvar<M> {
    fn make_model(&self) {
        self.seq.make_model();
        self.sleepers.make_model();
        self.busy.make_model();
    }
}

// SAFETY: `wait` always re-locks before returning; the three words are the whole state, valid
// at any address and with any value; notifications never block on waiters, dead or alive.
unsafe impl<M: RawMutex> RawCondvar for SeqCondvar<M> {
    type Mutex = M;
    const INIT: Self = SeqCondvar {
        seq: AtomicU32::new(0),
        sleepers: AtomicU32::new(0),
        busy: AtomicU32::new(0),
        _mutex: core::marker::PhantomData,
    };

    unsafe fn wait(&self, mutex: &M, deadline: Option<Deadline>) -> (Acquired, bool) {
        // SAFETY: the caller holds `mutex`.
        let timed_out = unsafe { self.release_and_sleep(mutex, deadline) };
        let acquired = mutex.lock();
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        (acquired, timed_out)
    }

    // The kernel counts the sleepers it wakes. A waiter that read the counter but is not
    // asleep yet is not counted: its futex wait finds the counter changed and returns at once.
    fn notify_one(&self) -> bool {
        if !self.bump() || !word::wake_one(&self.seq) {
            return false;
        }
        // Every waiter asleep in the kernel was counted before it slept, and the wake call
        // above comes after it in the kernel's queue lock: the count includes it.
        if self.sleepers.load(Ordering::SeqCst) >= 2 && !SKIP_HERD.is_on() {
            self.busy
                .store(Deadline::now().millis() | 1, Ordering::Relaxed);
            word::wake_tagged(&self.seq, i32::MAX, UNTIMED);
        }
        true
    }

    fn notify_all(&self) -> usize {
        if !self.bump() {
            return 0;
        }
        word::wake_all(&self.seq)
    }
}

crate::sync::native_only! {
    // SAFETY: `INIT` is three zero words, the condition variable's whole state.
    unsafe impl<M: RawMutex> crate::ShmZeroable for crate::generic::ShmCondvar<SeqCondvar<M>> {}
}

impl<M: RawMutex> SeqCondvar<M> {
    /// Counts the caller in, reads the counter, unlocks `mutex` and sleeps until the counter
    /// moves or `deadline` passes; returns whether the deadline passed. Leaves `mutex`
    /// unlocked and the caller counted.
    ///
    /// # Safety
    ///
    /// - The calling thread holds `mutex`.
    pub(crate) unsafe fn release_and_sleep(&self, mutex: &M, deadline: Option<Deadline>) -> bool {
        // Counted before the counter is read (see `bump`); the caller takes it off.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let seq = self.seq.load(Ordering::Relaxed);
        // SAFETY: the caller holds `mutex`.
        unsafe { mutex.unlock() };
        self.sleep(seq, deadline)
    }
}

impl<M> SeqCondvar<M> {
    /// Sleeps while the counter reads `seq`, until it moves or `deadline` passes; returns
    /// whether the deadline passed. Each round sleeps timed while the condvar is busy.
    fn sleep(&self, seq: u32, deadline: Option<Deadline>) -> bool {
        loop {
            let (until, tag) = match self.is_busy() {
                true => (Deadline::now().plus(RECHECK), TIMED),
                false => (None, UNTIMED),
            };
            let until = match until {
                Some(recheck) => Some(recheck.earlier(deadline)),
                None => deadline,
            };
            word::wait_tagged(&self.seq, seq, until, tag);
            if self.seq.load(Ordering::Relaxed) != seq {
                return false;
            }
            if deadline.is_some_and(Deadline::passed) {
                return true;
            }
        }
    }

    /// Moves the counter; returns whether anyone may sleep on it, so that a wake call is
    /// worth making.
    ///
    /// The count and the counter are a store-buffer pair: a waiter adds itself (SeqCst),
    /// later the kernel reads the counter, after a full barrier of its own (`smp_mb` in
    /// `futex_wait`, which the model's futex emulates with a SeqCst fence); the notifier moves
    /// the counter and then reads the count, with a SeqCst fence between. So the notifier sees the waiter
    /// counted, or the waiter's futex wait sees the counter moved and does not sleep.
    fn bump(&self) -> bool {
        self.seq.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.sleepers.load(Ordering::SeqCst) != 0
    }

    /// Whether a `notify_one` left sleepers behind less than [`BUSY`] ago.
    fn is_busy(&self) -> bool {
        let stamp = self.busy.load(Ordering::Relaxed);
        stamp != 0 && (Deadline::now().millis() | 1).wrapping_sub(stamp) < BUSY
    }
}

/// The seeded bug for the loom models to catch: a `notify_one` that woke one of several
/// waiters leaves the untimed sleepers asleep.
pub(crate) static SKIP_HERD: crate::backend::Mutant = crate::backend::Mutant::new();
