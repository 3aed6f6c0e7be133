//! The API that std and parking_lot users expect beyond the fixed one: `From<T>`, deadline
//! forms, notification results, mapped guards, a condvar shared by several mutexes and
//! unlinking a segment by name alone. Every body runs on every backend.
#![cfg(target_os = "linux")]

#[macro_use]
mod common;

use common::backends::{Backend, Mutex};

backend_tests! {
    from_makes_an_unlocked_mutex_holding_the_value,
}

fn from_makes_an_unlocked_mutex_holding_the_value<B: Backend>() {
    let m: Mutex<B, [u16; 3]> = [1, 2, 3].into();
    assert!(!m.is_poisoned());
    assert_eq!(*m.try_lock().unwrap(), [1, 2, 3]);
    assert_eq!(Mutex::<B, u8>::from(9).into_inner().unwrap(), 9);
}
