//! The pthread backend initialises its `pthread_mutex_t` lazily, in place, on first use; a
//! process that dies in the middle of that must not block anyone.
//!
//! These tests play the dying initialiser by writing its mark into the init word, which the
//! pinned `repr(C)` layout puts in the first four bytes of a `pthread::ShmMutex`:
//! `INITIALIZING | token`, with `INITIALIZING = 1 << 31` and the process's liveness token.

use std::sync::atomic::{AtomicU32, Ordering};

use shmsync::pthread::ShmMutex;
use shmsync::ShmBox;

use crate::backend::*;
use crate::common::{self, Exit};

/// The mark a process leaves in the init word while it initialises the mutex.
const INITIALIZING: u32 = 1 << 31;

/// The init word of a pthread-backend mutex.
fn init_word<T>(m: &ShmMutex<T>) -> &AtomicU32 {
    // SAFETY: `ShmMutex` and the raw pthread mutex are repr(C) with the 4-byte-aligned init
    // word first; it is only accessed atomically.
    unsafe { &*(m as *const ShmMutex<T>).cast::<AtomicU32>() }
}

/// Forks a child that marks `m` as being initialised by itself, then lives until killed.
fn stuck_initialiser(m: &ShmMutex<u64>, marked: &AtomicU32) -> common::Child {
    // Fork: the child claims the initialisation and stops there, as if it had been killed
    // in the middle of `pthread_mutex_init`.
    common::fork(|| {
        let me = shmsync::futex::__test_hooks::my_token();
        let claimed = init_word(m).compare_exchange(
            0,
            INITIALIZING | me,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if claimed.is_err() {
            return WRONG_RESULT;
        }
        marked.store(1, Ordering::Release);
        park_forever()
    })
}

/// Forks a child that locks `m` and exits 0 once it holds it with `expected` inside.
fn locker(m: &ShmMutex<u64>, expected: u64) -> common::Child {
    // Fork: the child reports through its exit code whether it got the lock.
    common::fork(move || match m.lock() {
        Ok(guard) if *guard == expected => 0,
        _ => WRONG_RESULT,
    })
}

#[test]
fn locker_waits_for_a_live_initialiser_then_takes_over_when_it_dies() {
    let shared = ShmBox::new((ShmMutex::new(11u64), AtomicU32::new(0))).unwrap();
    let (m, marked) = (&shared.0, &shared.1);
    let mut initialiser = stuck_initialiser(m, marked);
    await_flag(marked, 1);
    let waiting = locker(m, 11);
    await_sleeping(&waiting);
    assert!(
        !waiting.wait_exited(std::time::Duration::ZERO),
        "did not wait for the initialiser"
    );
    // Dead but not reaped: the waiter must see through the zombie.
    kill_leaving_zombie(&initialiser);
    waiting.join();
    assert_eq!(init_word(m).load(Ordering::Acquire), 1, "not READY");
    assert_eq!(*m.try_lock_for(PATIENCE).unwrap(), 11);
    assert_eq!(initialiser.wait(), Exit::Signal(libc::SIGKILL));
}

#[test]
fn initialiser_that_exited_midway_is_taken_over() {
    let shared = ShmBox::new(ShmMutex::new(3u64)).unwrap();
    // Fork: the child claims the initialisation and exits at once.
    let mut initialiser = common::fork(|| {
        let me = INITIALIZING | shmsync::futex::__test_hooks::my_token();
        match init_word(&shared).compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => 0,
            Err(_) => WRONG_RESULT,
        }
    });
    assert_eq!(initialiser.wait(), Exit::Code(0));
    locker(&shared, 3).join();
    *shared.lock().unwrap() += 1;
    assert_eq!(*shared.lock().unwrap(), 4);
}
