//! `ShmMutex::owner`: who holds a mutex, for logs — free, this thread, a live holder in another
//! process, and one the kernel says is dead. Every body runs on every backend.
#![cfg(target_os = "linux")]

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmsync::generic::RawMutex;
use shmsync::{BackendId, ShmBox};

use common::backends::{Backend, Mutex};

/// How long a test waits for another process before calling it hung.
const PATIENCE: Duration = Duration::from_secs(30);

backend_tests! {
    owner_is_none_while_free_and_names_this_thread_while_held,
    owner_names_a_live_holder_in_another_process_then_its_death,
}

/// The number a holder records for itself: its PID (futex) or its thread's TID (pthread).
fn my_id<B: Backend>() -> u32 {
    match <B::R as RawMutex>::ID {
        BackendId::Futex => std::process::id(),
        // SAFETY: gettid has no preconditions.
        BackendId::Pthread => (unsafe { libc::gettid() }) as u32,
    }
}

fn owner_is_none_while_free_and_names_this_thread_while_held<B: Backend>() {
    let m = ShmBox::new(Mutex::<B, u32>::new(0)).unwrap();
    assert_eq!(m.owner(), None, "a fresh mutex has no owner");
    let guard = m.lock().unwrap();
    let owner = m.owner().expect("a held mutex has an owner");
    assert_eq!(owner.pid(), Some(my_id::<B>()));
    assert!(!owner.is_dead(), "this thread is alive");
    drop(guard);
    assert_eq!(m.owner(), None, "an unlocked mutex has no owner");
}

fn owner_names_a_live_holder_in_another_process_then_its_death<B: Backend>() {
    // The lock, and a flag the child raises once it holds it.
    let shared = ShmBox::new((Mutex::<B, u32>::new(0), AtomicU32::new(0))).unwrap();
    let (lock, held) = (&shared.0, &shared.1);
    let child = common::fork(|| {
        let guard = lock.lock().unwrap();
        held.store(1, Ordering::Release);
        loop {
            // SAFETY: pause only waits for a signal; SIGKILL ends this child.
            unsafe { libc::pause() };
            let _ = &guard;
        }
    });
    assert!(
        common::wait_until(PATIENCE, || held.load(Ordering::Acquire) == 1),
        "the child never took the lock"
    );
    let owner = lock.owner().expect("the child holds the lock");
    // A forked child's only thread has the child's PID as its TID.
    assert_eq!(owner.pid(), Some(child.pid() as u32));
    assert!(!owner.is_dead(), "a live holder is not dead");

    child.signal(libc::SIGKILL);
    assert!(child.wait_exited(PATIENCE), "the child outlived SIGKILL");
    assert!(
        common::wait_until(PATIENCE, || lock.owner().is_some_and(|o| o.is_dead())),
        "the killed holder was never reported dead: {:?}",
        lock.owner()
    );
    assert_eq!(
        lock.owner().and_then(|o| o.pid()),
        Some(child.pid() as u32),
        "a dead holder is still named"
    );

    let guard = lock
        .lock()
        .expect_err("the dead holder poisoned it")
        .into_inner();
    assert_eq!(lock.owner().and_then(|o| o.pid()), Some(my_id::<B>()));
    drop(guard);
    assert_eq!(lock.owner(), None);
}
