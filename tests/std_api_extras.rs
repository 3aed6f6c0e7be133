//! The API that std and parking_lot users expect beyond the fixed one: `From<T>`, deadline
//! forms, notification results, mapped guards, a condvar shared by several mutexes and
//! unlinking a segment by name alone. Every body runs on every backend.
#![cfg(target_os = "linux")]

#[macro_use]
mod common;

use std::sync::TryLockError;
use std::time::{Duration, Instant};

use common::backends::{Backend, Mutex};

backend_tests! {
    from_makes_an_unlocked_mutex_holding_the_value,
    try_lock_until_would_block_until_the_deadline_then_takes_a_free_lock,
    try_lock_until_a_passed_deadline_still_takes_a_free_lock,
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
