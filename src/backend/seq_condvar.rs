//! A condition variable made of one shared futex sequence counter.
//!
//! Notes about memory ordering: the counter carries no data. A waiter reads it (Relaxed)
//! while still holding the mutex, then unlocks (Release). A notifier changes the protected
//! state under the mutex, then increments the counter. If that increment happened before the
//! waiter's read, the notifier's change was made before the waiter took the mutex and the
//! waiter saw it; otherwise the futex wait finds the counter changed and returns at once. No
//! waiter has state in shared memory, so a waiter killed inside `wait` harms nobody.
//!
//! One notification can still go to waste: `notify_one` wakes one sleeper, and if that one is
//! killed after the kernel woke it but before it re-took the mutex, the others sleep on. So a
//! sleeper also looks at the counter by itself every [`RECHECK`]: if it moved since the sleeper
//! went to sleep, it returns (a spurious wake-up, as condvars allow) and its caller re-checks
//! its condition. A lost notification costs at most that long, and an idle waiter wakes twice a
//! second, which costs nothing measurable.

use crate::backend::{Acquired, RawCondvar, RawMutex, Sealed};
use crate::sync::{word, AtomicU32, Deadline, MakeModel, Ordering, Wake, MODELLED};

/// How often a sleeping waiter checks the counter without being woken.
const RECHECK: core::time::Duration = core::time::Duration::from_millis(500);

/// A futex sequence counter usable with any raw mutex `M`.
#[repr(C)]
pub struct SeqCondvar<M> {
    /// Incremented by every notification.
    seq: AtomicU32,
    _mutex: core::marker::PhantomData<fn(&M)>,
}

const _: () = assert!(MODELLED || core::mem::size_of::<SeqCondvar<()>>() == 4);

impl<M> Sealed for SeqCondvar<M> {}

impl<M> MakeModel for SeqCondvar<M> {
    fn make_model(&self) {
        self.seq.make_model();
    }
}

// SAFETY: `wait` always re-locks before returning; the counter is the whole state, valid at
// any address; notifications never block on waiters, dead or alive.
unsafe impl<M: RawMutex> RawCondvar for SeqCondvar<M> {
    type Mutex = M;
    const INIT: Self = SeqCondvar {
        seq: AtomicU32::new(0),
        _mutex: core::marker::PhantomData,
    };

    unsafe fn wait(&self, mutex: &M, deadline: Option<Deadline>) -> (Acquired, bool) {
        let seq = self.seq.load(Ordering::Relaxed);
        // SAFETY: the caller holds `mutex`.
        unsafe { mutex.unlock() };
        let timed_out = self.sleep(seq, deadline);
        (mutex.lock(), timed_out)
    }

    // The kernel counts the sleepers it wakes. A waiter that read the counter but is not
    // asleep yet is not counted: its futex wait finds the counter changed and returns at once.
    fn notify_one(&self) -> bool {
        self.seq.fetch_add(1, Ordering::Relaxed);
        word::wake_one(&self.seq)
    }

    fn notify_all(&self) -> usize {
        self.seq.fetch_add(1, Ordering::Relaxed);
        word::wake_all(&self.seq)
    }
}

crate::sync::native_only! {
    // SAFETY: `INIT` is a zero counter, the condition variable's whole state.
    unsafe impl<M: RawMutex> crate::ShmZeroable for crate::generic::ShmCondvar<SeqCondvar<M>> {}
}

impl<M> SeqCondvar<M> {
    /// Sleeps while the counter reads `seq`, until woken or `deadline`; returns whether the
    /// deadline passed. Returns early, too, when a check every [`RECHECK`] finds the counter
    /// moved (a notification that woke someone else, who may have died since).
    fn sleep(&self, seq: u32, deadline: Option<Deadline>) -> bool {
        loop {
            let until = match Deadline::now().plus(RECHECK) {
                Some(recheck) => Some(recheck.earlier(deadline)),
                None => deadline,
            };
            if word::wait(&self.seq, seq, until) == Wake::Woken {
                return false;
            }
            if deadline.is_some_and(Deadline::passed) {
                return true;
            }
            if self.seq.load(Ordering::Relaxed) != seq {
                return false;
            }
        }
    }
}
