//! The API that std and parking_lot users expect beyond the fixed one: `From<T>`, deadline
//! forms, notification results, mapped guards, a condvar shared by several mutexes and
//! unlinking a segment by name alone. Every body runs on every backend.
#![cfg(target_os = "linux")]

#[macro_use]
mod common;

/// How long a test waits for another process before calling it hung.
const PATIENCE: Duration = Duration::from_secs(30);

use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shmsync::ShmBox;

use common::backends::{Backend, Condvar, Mutex};

backend_tests! {
    from_makes_an_unlocked_mutex_holding_the_value,
    try_lock_until_would_block_until_the_deadline_then_takes_a_free_lock,
    try_lock_until_a_passed_deadline_still_takes_a_free_lock,
    wait_until_times_out_at_the_deadline_with_the_lock_held_again,
    wait_while_until_returns_when_another_process_makes_the_condition_false,
}

fn from_makes_an_unlocked_mutex_holding_the_value<B: Backend>() {
    let m: Mutex<B, [u16; 3]> = [1, 2, 3].into();
    assert!(!m.is_poisoned());
    assert_eq!(*m.try_lock().unwrap(), [1, 2, 3]);
    assert_eq!(Mutex::<B, u8>::from(9).into_inner().unwrap(), 9);
}

fn try_lock_until_would_block_until_the_deadline_then_takes_a_free_lock<B: Backend>() {
    let m = Mutex::<B, _>::new(0u32);
    let held = m.lock().unwrap();
    let wait = Duration::from_millis(30);
    let start = Instant::now();
    let attempt = m.try_lock_until(start + wait);
    assert!(matches!(attempt, Err(TryLockError::WouldBlock)));
    assert!(start.elapsed() >= wait, "gave up early: {:?}", start.elapsed());
    drop(held);
    let far = Instant::now() + Duration::from_secs(3600);
    *m.try_lock_until(far).unwrap() += 1;
    assert_eq!(*m.lock().unwrap(), 1);
}

fn try_lock_until_a_passed_deadline_still_takes_a_free_lock<B: Backend>() {
    let m = Mutex::<B, _>::new(5u8);
    let past = Instant::now();
    assert_eq!(*m.try_lock_until(past).unwrap(), 5);
    let held = m.lock().unwrap();
    assert!(matches!(m.try_lock_until(past), Err(TryLockError::WouldBlock)));
    drop(held);
}

fn wait_until_times_out_at_the_deadline_with_the_lock_held_again<B: Backend>() {
    let (m, cv) = (Mutex::<B, _>::new(0u32), Condvar::<B>::new());
    let deadline = Instant::now() + Duration::from_millis(20);
    let (mut guard, result) = cv.wait_until(m.lock().unwrap(), deadline).unwrap();
    assert!(result.timed_out());
    assert!(Instant::now() >= deadline, "woke before the deadline");
    *guard += 1;
    // The same deadline, now passed: the condition is checked once more, no wait.
    let (guard, result) = cv.wait_while_until(guard, deadline, |n| *n < 5).unwrap();
    assert!(result.timed_out());
    assert_eq!(*guard, 1);
    drop(guard);
    assert!(m.try_lock().is_ok());
}

fn wait_while_until_returns_when_another_process_makes_the_condition_false<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(false), Condvar::<B>::new())).unwrap();
    let (m, cv) = (&shared.0, &shared.1);
    let guard = m.lock().unwrap();
    // Fork: the child sets the flag once it can lock, i.e. once the parent waits.
    let child = common::fork(|| {
        *m.lock().unwrap() = true;
        cv.notify_all();
        0
    });
    let deadline = Instant::now() + PATIENCE;
    let (guard, result) = cv.wait_while_until(guard, deadline, |ready| !*ready).unwrap();
    assert!(!result.timed_out(), "no notification before the deadline");
    assert!(*guard);
    drop(guard);
    child.join();
}
