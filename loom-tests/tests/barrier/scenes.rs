//! Barrier scenes shared by the barrier models and the seeded-bug model. They share the
//! barrier through std's `Arc`: a model caught failing unwinds, and a loom `Arc` must not be
//! dropped then.

use loom::thread;
use shmsync::{BarrierError, ShmBarrier};
use std::sync::Arc;

/// Spawns a model thread (a simulated process of its own) that runs `f` on the barrier.
pub fn spawn<R: Send + 'static>(
    b: &Arc<ShmBarrier>,
    f: impl FnOnce(&ShmBarrier) -> R + Send + 'static,
) -> thread::JoinHandle<R> {
    let b = b.clone();
    thread::spawn(move || f(&b))
}

/// Joins and dies before arriving (its place still names it: a death leaves no trace).
pub fn join_and_die(b: &ShmBarrier) {
    std::mem::forget(b.join().expect("a free place"));
    shmsync::loom::die();
}

/// Joins and waits once.
pub fn join_and_wait(b: &ShmBarrier) -> Result<bool, BarrierError> {
    let mut party = b.join().expect("a free place");
    party.wait().map(|r| r.is_leader())
}

/// Three parties: one joins and dies, one waits, and the first (already joined before the
/// others start) waits last. Both survivors must see the break; neither may hang.
pub fn a_death_is_seen_by_a_waiter_and_by_a_late_arrival() {
    let b = Arc::new(ShmBarrier::new(3));
    // Not dropped while a failed model unwinds (loom objects must not be used then).
    let mut me = std::mem::ManuallyDrop::new(b.join().unwrap());
    let dead = spawn(&b, join_and_die);
    let waiter = spawn(&b, join_and_wait);
    assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
    assert_eq!(me.wait().map(|r| r.is_leader()), Err(BarrierError::Broken));
    dead.join().unwrap();
    assert!(!b.is_broken());
    drop(std::mem::ManuallyDrop::into_inner(me));
}
