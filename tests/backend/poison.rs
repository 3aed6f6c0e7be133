//! Poisoning across processes: a holder killed, left a zombie, or panicking.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;

use shmsync::ShmBox;

use crate::backend::*;
use crate::common::backends::{Backend, Mutex};
use crate::common::{self, Exit};

/// Forks a child that locks `m`, stores `value`, raises `held` and stays alive holding the
/// lock until killed.
fn holder<B: Backend>(m: &Mutex<B, u64>, held: &AtomicU32, value: u64) -> common::Child {
    // Fork: the child keeps the lock until the parent kills it.
    common::fork(|| {
        let mut guard = m.lock().unwrap();
        *guard = value;
        held.store(1, Ordering::Release);
        park_forever()
    })
}

/// Forks a child that calls `lock()` and exits 0 if it got a poisoned guard holding
/// `expected`.
fn poisoned_lock_checker<B: Backend>(m: &Mutex<B, u64>, expected: u64) -> common::Child {
    // Fork: the child reports what `lock` returned through its exit code.
    common::fork(move || match m.lock() {
        Err(poisoned) if **poisoned.get_ref() == expected => 0,
        _ => WRONG_RESULT,
    })
}

pub fn killed_holder_poisons_and_leaves_the_data_usable<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(0u64), AtomicU32::new(0))).unwrap();
    let (m, held) = (&shared.0, &shared.1);
    let victim = holder::<B>(m, held, 42);
    await_flag(held, 1);
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    poisoned_lock_checker::<B>(m, 42).join();
    assert!(m.is_poisoned());
    // The guard inside the error is a real guard: it writes, and unlocks on drop.
    match m.try_lock_for(PATIENCE) {
        Err(TryLockError::Poisoned(e)) => *e.into_inner() += 1,
        other => panic!("expected poison, got {:?}", other.map(|g| *g)),
    }
    assert!(m.is_poisoned(), "poison must stay until cleared");
    assert_eq!(*m.lock().unwrap_err().into_inner(), 43);
    m.clear_poison();
    assert!(!m.is_poisoned());
    assert_eq!(*m.lock().unwrap(), 43);
}

pub fn process_blocked_in_lock_wakes_poisoned_when_the_holder_is_killed<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(0u64), AtomicU32::new(0))).unwrap();
    let (m, held) = (&shared.0, &shared.1);
    let victim = holder::<B>(m, held, 5);
    await_flag(held, 1);
    let blocked = poisoned_lock_checker::<B>(m, 5);
    await_sleeping(&blocked);
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    blocked.join();
}

pub fn zombie_holder_is_detected_before_it_is_reaped<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(0u64), AtomicU32::new(0))).unwrap();
    let (m, held) = (&shared.0, &shared.1);
    let mut victim = holder::<B>(m, held, 9);
    await_flag(held, 1);
    kill_leaving_zombie(&victim);
    poisoned_lock_checker::<B>(m, 9).join();
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    assert_eq!(proc_state(victim.pid()), Some('Z'), "reaped too early");
    assert_eq!(victim.wait(), Exit::Signal(libc::SIGKILL));
}

pub fn holder_killed_with_two_mutexes_poisons_both<B: Backend>() {
    let shared = ShmBox::new((
        Mutex::<B, _>::new(1u64),
        Mutex::<B, _>::new(2u64),
        AtomicU32::new(0),
    ))
    .unwrap();
    let (first, second, held) = (&shared.0, &shared.1, &shared.2);
    // Fork: the child holds both locks until it is killed.
    let victim = common::fork(|| {
        let _a = first.lock().unwrap();
        let _b = second.lock().unwrap();
        held.store(1, Ordering::Release);
        park_forever()
    });
    await_flag(held, 1);
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    for (m, value) in [(first, 1), (second, 2)] {
        match m.try_lock_for(PATIENCE) {
            Err(TryLockError::Poisoned(e)) => assert_eq!(*e.into_inner(), value),
            _ => panic!("mutex {value} is not poisoned"),
        }
        assert!(m.is_poisoned());
    }
}

pub fn panic_in_another_process_poisons<B: Backend>() {
    let shared = ShmBox::new(Mutex::<B, _>::new(0u64)).unwrap();
    // Fork: the child panics holding the guard, catches it and exits normally.
    let child = common::fork(|| {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut guard = shared.lock().unwrap();
            *guard = 7;
            // Unwind without the panic hook: nothing printed from the child.
            std::panic::resume_unwind(Box::new("panic while holding the guard"));
        }));
        match caught {
            Err(_) => 0,
            Ok(()) => WRONG_RESULT,
        }
    });
    child.join();
    assert!(shared.is_poisoned());
    match shared.try_lock() {
        Err(TryLockError::Poisoned(e)) => assert_eq!(*e.into_inner(), 7),
        _ => panic!("expected a poisoned mutex"),
    };
}
