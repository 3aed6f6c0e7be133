//! Loom models of the additions to std's API: mapped guards order their holders as guards
//! do, and the notification results never count a waiter that is not there, even for
//! waiters of two mutexes sharing one condvar.

extern crate shmsync_loom as shmsync;

mod common;

use common::model;
use loom::sync::Arc;
use loom::thread;
use shmsync::{MappedShmMutexGuard, ShmCondvar, ShmMutex, ShmMutexGuard};

/// Two fields under one mutex, each updated through a mapped guard.
fn add_through_mapped_guards(m: &ShmMutex<(u32, u32)>) {
    let first = ShmMutexGuard::map(m.lock().unwrap(), |pair| pair);
    let mut second = MappedShmMutexGuard::map(first, |pair| &mut pair.1);
    *second += 1;
    drop(second);
    let mut first = ShmMutexGuard::map(m.lock().unwrap(), |pair| &mut pair.0);
    *first += 1;
}

#[test]
fn mapped_guards_exclude_each_other_like_guards() {
    model(|| {
        let m = Arc::new(ShmMutex::new((0u32, 0u32)));
        let other = {
            let m = m.clone();
            thread::spawn(move || add_through_mapped_guards(&m))
        };
        add_through_mapped_guards(&m);
        other.join().unwrap();
        assert_eq!(*m.lock().unwrap(), (2, 2));
    });
}

/// Two flags, each under its own mutex, and one condvar for both.
struct TwoFlags {
    a: ShmMutex<bool>,
    b: ShmMutex<bool>,
    cv: ShmCondvar,
}

#[test]
fn waiters_of_two_mutexes_on_one_condvar_are_woken_and_never_overcounted() {
    model(|| {
        let s = Arc::new(TwoFlags {
            a: ShmMutex::new(false),
            b: ShmMutex::new(false),
            cv: ShmCondvar::new(),
        });
        let waiter = {
            let s = s.clone();
            thread::spawn(move || drop(s.cv.wait_while(s.a.lock().unwrap(), |set| !*set)))
        };
        *s.b.lock().unwrap() = true;
        // Nobody waits with `b`; the notification may reach the waiter of `a`, who sleeps on.
        assert!(s.cv.notify_all() <= 1);
        *s.a.lock().unwrap() = true;
        let _ = s.cv.notify_one();
        waiter.join().unwrap();
        assert!(!s.cv.notify_one());
        assert_eq!(s.cv.notify_all(), 0);
    });
}
