//! A condition variable made of one shared futex sequence counter.
//!
//! Notes about memory ordering: the counter carries no data. A waiter reads it (Relaxed)
//! while still holding the mutex, then unlocks (Release). A notifier changes the protected
//! state under the mutex, then increments the counter. If that increment happened before the
//! waiter's read, the notifier's change was made before the waiter took the mutex and the
//! waiter saw it; otherwise the futex wait finds the counter changed and returns at once. No
//! waiter has state in shared memory, so a waiter killed inside `wait` harms nobody.

use crate::backend::{Acquired, RawCondvar, RawMutex, Sealed};
use crate::sync::futex::{self, Wake};
use crate::sync::{AtomicU32, Deadline, Ordering};

/// A futex sequence counter usable with any raw mutex `M`.
#[repr(C)]
pub struct SeqCondvar<M> {
    /// Incremented by every notification.
    seq: AtomicU32,
    _mutex: core::marker::PhantomData<fn(&M)>,
}

#[cfg(not(shmsync_loom))]
const _: () = assert!(core::mem::size_of::<SeqCondvar<()>>() == 4);

impl<M> Sealed for SeqCondvar<M> {}

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
        let timed_out = futex::wait(&self.seq, seq, deadline) == Wake::TimedOut;
        (mutex.lock(), timed_out)
    }

    fn notify_one(&self) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        futex::wake_one(&self.seq);
    }

    fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        futex::wake_all(&self.seq);
    }

    #[cfg(shmsync_loom)]
    fn make_model_objects(&self) {
        self.seq.make();
    }
}
