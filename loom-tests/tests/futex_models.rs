//! Loom models of the futex mutex and condition variable, through `shmsync::futex`'s
//! public types, with simulated processes (each model thread is one).
//!
//! Every guard is a loom cell access, so a lock that lets two holders overlap, or fails to
//! order one after the other, is a causality violation; a lost wake-up is a deadlock.
//!
//! Every write to the lock word is a read-modify-write (the forged unlock below too): loom
//! lets a plain store slip before a concurrent compare-exchange in modification order, which
//! the real algorithm never relies on.

extern crate shmsync_loom as shmsync;

mod common;
#[path = "condvar/dying_waiter.rs"]
mod dying_waiter;

use std::sync::TryLockError;
use std::time::Duration;

use common::model;
use loom::sync::Arc;
use loom::thread;
use shmsync::futex::{__test_hooks as hooks, ShmCondvar, ShmMutex};

/// A counter under a futex mutex, and a condition variable.
struct Shared {
    m: ShmMutex<u32>,
    cv: ShmCondvar,
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        m: ShmMutex::new(0),
        cv: ShmCondvar::new(),
    })
}

/// Spawns a model thread, which is a simulated process of its own.
fn spawn(s: &Arc<Shared>, f: impl FnOnce(&Shared) + Send + 'static) -> thread::JoinHandle<()> {
    let s = s.clone();
    thread::spawn(move || f(&s))
}

impl Shared {
    fn add(&self, n: u32) {
        *self.m.lock().unwrap() += n;
    }

    /// Waits on the condvar until the counter reaches `n`.
    fn wait_for(&self, n: u32) {
        drop(
            self.cv
                .wait_while(self.m.lock().unwrap(), |v| *v < n)
                .unwrap(),
        );
    }

    /// Locks, telling whether the lock was poisoned, and adds `n`; returns the value before.
    fn add_poisoned(&self, n: u32) -> (bool, u32) {
        let (mut g, poisoned) = match self.m.lock() {
            Ok(g) => (g, false),
            Err(p) => (p.into_inner(), true),
        };
        let before = *g;
        *g += n;
        (poisoned, before)
    }
}

#[test]
fn three_processes_increment_under_the_lock() {
    model(|| {
        let s = shared();
        let a = spawn(&s, |s| s.add(1));
        let b = spawn(&s, |s| s.add(1));
        s.add(1);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(*s.m.lock().unwrap(), 3);
    });
}

#[test]
fn try_lock_never_shares_the_lock() {
    model(|| {
        let s = shared();
        let a = spawn(&s, |s| s.add(1));
        match s.m.try_lock() {
            Ok(mut g) => *g += 1,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Poisoned(_)) => panic!("nobody died"),
        }
        a.join().unwrap();
    });
}

#[test]
fn notify_one_after_a_change_is_never_lost() {
    model(|| {
        let s = shared();
        let waiter = spawn(&s, |s| s.wait_for(1));
        s.add(1);
        s.cv.notify_one();
        waiter.join().unwrap();
    });
}

#[test]
fn notify_all_wakes_every_waiter() {
    model(|| {
        let s = shared();
        let w1 = spawn(&s, |s| s.wait_for(1));
        let w2 = spawn(&s, |s| s.wait_for(1));
        s.add(1);
        s.cv.notify_all();
        w1.join().unwrap();
        w2.join().unwrap();
    });
}

#[test]
fn timed_lock_either_locks_or_times_out_and_leaves_the_lock_usable() {
    model(|| {
        let s = shared();
        let holder = spawn(&s, |s| s.add(1));
        let timed = spawn(&s, |s| match s.m.try_lock_for(Duration::from_millis(5)) {
            Ok(mut g) => *g += 1,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Poisoned(_)) => panic!("nobody died"),
        });
        holder.join().unwrap();
        timed.join().unwrap();
        // A CONTENDED flag left by the timed-out locker must not block anyone.
        assert!(s.m.lock().is_ok());
    });
}

#[test]
fn timed_condvar_wait_returns_holding_the_lock() {
    model(|| {
        let s = shared();
        let waiter = spawn(&s, |s| {
            let mut g = s.m.lock().unwrap();
            if *g == 0 {
                g = s.cv.wait_timeout(g, Duration::from_millis(5)).unwrap().0;
            }
            *g += 10;
        });
        s.add(1);
        s.cv.notify_one();
        waiter.join().unwrap();
        assert_eq!(*s.m.lock().unwrap(), 11);
    });
}

#[test]
fn owner_death_is_taken_over_and_poisons() {
    model(|| {
        let s = shared();
        let victim = spawn(&s, |s| {
            let mut g = s.m.lock().unwrap();
            *g += 1;
            shmsync::loom::die_holding(g);
        });
        let locker = spawn(&s, |s| {
            let (poisoned, before) = s.add_poisoned(2);
            // Poisoned exactly when the victim got there first and died holding the lock.
            assert_eq!(poisoned, before == 1);
        });
        victim.join().unwrap();
        locker.join().unwrap();
        // Whoever locks next sees the poison, taking over from the victim or not.
        let (poisoned, before) = s.add_poisoned(0);
        assert!(poisoned);
        assert_eq!(before, 3);
    });
}

#[test]
fn try_lock_takes_over_a_dead_owner() {
    model(|| {
        let s = shared();
        let victim = spawn(&s, |s| shmsync::loom::die_holding(s.m.lock().unwrap()));
        let early = s.m.try_lock();
        let took_over = matches!(early, Err(TryLockError::Poisoned(_)));
        if let Ok(g) = early {
            drop(g);
            victim.join().unwrap();
        } else {
            // Hold on to a taken-over guard (or nothing) while the victim finishes.
            victim.join().unwrap();
            drop(early);
        }
        if !took_over {
            assert!(matches!(s.m.try_lock(), Err(TryLockError::Poisoned(_))));
        }
    });
}

#[test]
fn death_between_unlock_and_wake_only_delays_the_sleeper() {
    model(|| {
        let s = shared();
        let victim = spawn(&s, |s| {
            let g = s.m.lock().unwrap();
            // The unlock's swap lands, then the process dies before its FUTEX_WAKE.
            hooks::forge(&s.m, 0, 0);
            shmsync::loom::die_holding(g);
        });
        assert!(s.m.lock().is_ok());
        victim.join().unwrap();
    });
}

#[test]
fn a_notification_spent_on_a_waiter_that_dies_still_wakes_the_other() {
    model(dying_waiter::a_notification_spent_on_a_dying_waiter);
}
