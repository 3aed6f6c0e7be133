//! Mutual exclusion across processes: counting, try-locking, and signals.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shmsync::{ShmBox, SysvKey};

use crate::backend::*;
use crate::common;
use crate::common::backends::{Backend, Mutex};

/// Updates per process in the counting tests.
const UPDATES: u64 = 10_000;
/// Forked children in the counting tests (the parent counts too).
const CHILDREN: u64 = 3;

/// Waits for `go`, then makes `UPDATES` checked updates; 0, or `TORN`.
fn hammer<B: Backend>(tally: &Mutex<B, Tally>, go: &AtomicU32) -> i32 {
    if !flag_reached(go, 1) {
        return TIMED_OUT;
    }
    for _ in 0..UPDATES {
        let mut t = tally.lock().unwrap();
        if !t.is_consistent() {
            return TORN;
        }
        t.bump();
    }
    0
}

/// Removes a System V segment when dropped, even if the test fails.
struct RemoveOnDrop<'a, T: shmsync::ShmSafe>(&'a ShmBox<T>);
impl<T: shmsync::ShmSafe> Drop for RemoveOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.sysv_remove().unwrap();
    }
}

pub fn sysv_segment_counts_every_update_from_every_process<B: Backend>() {
    let seg = ShmBox::sysv_create(SysvKey::Private, Mutex::<B, _>::new(Tally::ZERO)).unwrap();
    let _remove = RemoveOnDrop(&seg);
    let id = seg.sysv_id().unwrap();
    let go = ShmBox::new(AtomicU32::new(0)).unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            // Fork: each child attaches the segment by id (at its own address,
            // as a separate C program would) and counts.
            common::fork(|| {
                let mine = ShmBox::<Mutex<B, Tally>>::sysv_attach(id).unwrap();
                hammer::<B>(&mine, &go)
            })
        })
        .collect();
    go.store(1, Ordering::Release);
    assert_eq!(hammer::<B>(&seg, &go), 0);
    children.into_iter().for_each(common::Child::join);
    let total = *seg.lock().unwrap();
    assert!(total.is_consistent(), "{total:?}");
    assert_eq!(total.count, (CHILDREN + 1) * UPDATES);
}

pub fn anonymous_box_counts_every_update_from_every_process<B: Backend>() {
    // Nobody locks before the fork: the children also race the first lock.
    let shared = ShmBox::new((Mutex::<B, _>::new(Tally::ZERO), AtomicU32::new(0))).unwrap();
    let (tally, go) = (&shared.0, &shared.1);
    let children: Vec<_> = (0..CHILDREN)
        // Fork: each child counts on the inherited mapping.
        .map(|_| common::fork(|| hammer::<B>(tally, go)))
        .collect();
    go.store(1, Ordering::Release);
    assert_eq!(hammer::<B>(tally, go), 0);
    children.into_iter().for_each(common::Child::join);
    let total = *tally.lock().unwrap();
    assert!(total.is_consistent(), "{total:?}");
    assert_eq!(total.count, (CHILDREN + 1) * UPDATES);
}

pub fn try_lock_and_try_lock_for_would_block_while_another_process_holds<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(1u32), AtomicU32::new(0))).unwrap();
    let (m, step) = (&shared.0, &shared.1);
    // Fork: the child holds the lock until the parent sets step 2.
    let holder = common::fork(|| {
        let _held = m.lock().unwrap();
        step.store(1, Ordering::Release);
        if flag_reached(step, 2) {
            0
        } else {
            TIMED_OUT
        }
    });
    await_flag(step, 1);
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    let timeout = Duration::from_millis(30);
    let start = Instant::now();
    assert!(matches!(
        m.try_lock_for(timeout),
        Err(TryLockError::WouldBlock)
    ));
    assert!(start.elapsed() >= timeout, "gave up early");
    step.store(2, Ordering::Release);
    holder.join();
    assert_eq!(*m.try_lock().unwrap(), 1);
    assert_eq!(*m.try_lock_for(PATIENCE).unwrap(), 1);
}

/// A child blocks in `lock` (`timed` false) or `try_lock_for` (true) while the parent holds
/// the lock and pelts it with SIGUSR1 (no `SA_RESTART`); it must get the lock cleanly once
/// the parent lets go.
fn blocked_lock_survives_signals<B: Backend>(timed: bool) {
    let shared = ShmBox::new((
        Mutex::<B, _>::new(0u32),
        AtomicU32::new(0),
        AtomicU32::new(0),
    ))
    .unwrap();
    let (m, ready, signals) = (&shared.0, &shared.1, &shared.2);
    let held = m.lock().unwrap();
    // Fork: the child counts signals, then blocks on the parent's lock.
    let child = common::fork(|| {
        count_sigusr1(signals);
        ready.store(1, Ordering::Release);
        let got = match timed {
            false => m.lock().ok(),
            true => m.try_lock_for(PATIENCE).ok(),
        };
        match got {
            Some(value) if *value == 7 => 0,
            _ => WRONG_RESULT,
        }
    });
    await_flag(ready, 1);
    await_sleeping(&child);
    pelt_with_signals(&child, signals, 50);
    let mut held = held;
    *held = 7;
    drop(held);
    child.join();
}

pub fn lock_blocked_through_signals_without_sa_restart_succeeds<B: Backend>() {
    blocked_lock_survives_signals::<B>(false);
}

pub fn try_lock_for_blocked_through_signals_without_sa_restart_succeeds<B: Backend>() {
    blocked_lock_survives_signals::<B>(true);
}
