//! Loom models of the futex mutex and condition variable, with simulated processes.
//!
//! Each model thread plays one process (`process::enter`). Run with
//! `cargo test -p loom-tests --release`; the preemption bound defaults to
//! [`PREEMPTIONS`] and `LOOM_MAX_PREEMPTIONS` overrides it.
//!
//! Every write to the lock word is a read-modify-write (the forged unlock below too): loom
//! lets a plain store slip before a concurrent compare-exchange in modification order, which
//! the real algorithm never relies on.

use crate::backend::futex::{RawFutexCondvar, RawFutexMutex};
use crate::backend::{Acquired, RawCondvar, RawMutex};
use crate::sync::{process, Deadline};
use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering::Relaxed;

/// Default preemption bound. Measured in release mode on 2 cores for the whole suite: bound 3
/// takes ~1 s, 4 takes ~13 s, 5 takes ~90 s. Both seeded bugs we tried (a locker leaving the
/// slow path without `CONTENDED`; a `Relaxed` acquiring compare-exchange) fail at bound 3
/// already; 4 buys margin while staying well under two minutes.
const PREEMPTIONS: usize = 4;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

/// A mutex with a poison flag, a condition variable and a value, like `ShmMutex` on this
/// backend (the poison rule is the generic one: an owner death sets the flag).
struct Shared {
    mutex: RawFutexMutex,
    cv: RawFutexCondvar,
    poison: AtomicU32,
    value: UnsafeCell<u32>,
}

impl Shared {
    fn new() -> Arc<Shared> {
        let s = Arc::new(Shared {
            mutex: RawFutexMutex::INIT,
            cv: RawFutexCondvar::INIT,
            poison: AtomicU32::new(0),
            value: UnsafeCell::new(0),
        });
        // The loom atomics behind `const INIT` are made on first use: make them here, before
        // any other thread can see them.
        s.mutex.raw_state();
        s.cv.notify_all();
        s
    }

    /// Records an acquisition as the generic mutex does; returns whether it is poisoned.
    fn record(&self, acquired: Acquired) -> bool {
        if acquired == Acquired::OwnerDied {
            self.poison.store(1, Relaxed);
        }
        self.poison.load(Relaxed) != 0
    }

    fn lock(&self) -> bool {
        self.record(self.mutex.lock())
    }

    fn unlock(&self) {
        // SAFETY: every caller holds the mutex.
        unsafe { self.mutex.unlock() }
    }

    fn add(&self, n: u32) -> u32 {
        self.value.with_mut(|v| {
            // SAFETY: the caller holds the mutex, so no one else touches the value.
            unsafe { *v += n };
            // SAFETY: as above.
            unsafe { *v }
        })
    }

    fn get(&self) -> u32 {
        // SAFETY: the caller holds the mutex.
        self.value.with(|v| unsafe { *v })
    }

    /// Waits on the condvar until the value reaches `n`.
    fn wait_for(&self, n: u32) {
        self.lock();
        while self.get() < n {
            // SAFETY: this thread holds the mutex.
            unsafe { self.cv.wait(&self.mutex, None) };
        }
        self.unlock();
    }
}

/// Spawns a model thread playing process `pid`.
fn spawn(pid: u32, s: &Arc<Shared>, f: impl FnOnce(&Shared) + 'static) -> thread::JoinHandle<()> {
    let s = s.clone();
    thread::spawn(move || {
        process::enter(pid);
        f(&s)
    })
}

#[test]
fn three_processes_increment_under_the_lock() {
    model(|| {
        process::enter(3);
        let s = Shared::new();
        let a = spawn(1, &s, |s| {
            s.lock();
            s.add(1);
            s.unlock();
        });
        let b = spawn(2, &s, |s| {
            s.lock();
            s.add(1);
            s.unlock();
        });
        s.lock();
        s.add(1);
        s.unlock();
        a.join().unwrap();
        b.join().unwrap();
        assert!(!s.lock());
        assert_eq!(s.get(), 3);
        s.unlock();
    });
}

#[test]
fn try_lock_never_shares_the_lock() {
    model(|| {
        process::enter(2);
        let s = Shared::new();
        let a = spawn(1, &s, |s| {
            s.lock();
            s.add(1);
            s.unlock();
        });
        if let Some(acquired) = s.mutex.try_lock() {
            assert_eq!(acquired, Acquired::Clean);
            s.add(1);
            s.unlock();
        }
        a.join().unwrap();
    });
}

#[test]
fn notify_one_after_a_change_is_never_lost() {
    model(|| {
        process::enter(2);
        let s = Shared::new();
        let waiter = spawn(1, &s, |s| s.wait_for(1));
        s.lock();
        s.add(1);
        s.unlock();
        s.cv.notify_one();
        waiter.join().unwrap();
    });
}

#[test]
fn notify_all_wakes_every_waiter() {
    model(|| {
        process::enter(3);
        let s = Shared::new();
        let w1 = spawn(1, &s, |s| s.wait_for(1));
        let w2 = spawn(2, &s, |s| s.wait_for(1));
        s.lock();
        s.add(1);
        s.unlock();
        s.cv.notify_all();
        w1.join().unwrap();
        w2.join().unwrap();
    });
}

#[test]
fn timed_lock_either_locks_or_times_out_and_leaves_the_lock_usable() {
    model(|| {
        process::enter(3);
        let s = Shared::new();
        let holder = spawn(1, &s, |s| {
            s.lock();
            s.add(1);
            s.unlock();
        });
        let timed = spawn(2, &s, |s| {
            if s.mutex.try_lock_until(Deadline::user(5)).is_some() {
                s.add(1);
                s.unlock();
            }
        });
        holder.join().unwrap();
        timed.join().unwrap();
        // A CONTENDED flag left by the timed-out locker must not block anyone.
        assert!(!s.lock());
        s.unlock();
    });
}

#[test]
fn timed_condvar_wait_returns_holding_the_lock() {
    model(|| {
        process::enter(2);
        let s = Shared::new();
        let waiter = spawn(1, &s, |s| {
            s.lock();
            if s.get() == 0 {
                // SAFETY: this thread holds the mutex.
                let (acquired, _) = unsafe { s.cv.wait(&s.mutex, Some(Deadline::user(5))) };
                assert_eq!(acquired, Acquired::Clean);
            }
            s.add(10);
            s.unlock();
        });
        s.lock();
        s.add(1);
        s.unlock();
        s.cv.notify_one();
        waiter.join().unwrap();
        s.lock();
        assert_eq!(s.get(), 11);
        s.unlock();
    });
}

#[test]
fn owner_death_is_taken_over_and_poisons() {
    model(|| {
        process::enter(3);
        let s = Shared::new();
        let victim = spawn(1, &s, |s| {
            s.lock();
            s.add(1);
            process::die();
        });
        let locker = spawn(2, &s, |s| {
            let poisoned = s.lock();
            // Poisoned exactly when the victim got there first and died holding the lock.
            assert_eq!(poisoned, s.get() == 1);
            s.add(2);
            s.unlock();
        });
        victim.join().unwrap();
        locker.join().unwrap();
        // Whoever locks next sees the poison, taking over from the victim or not.
        assert!(s.lock());
        assert_eq!(s.get(), 3);
        s.unlock();
    });
}

#[test]
fn try_lock_takes_over_a_dead_owner() {
    model(|| {
        process::enter(2);
        let s = Shared::new();
        let victim = spawn(1, &s, |s| {
            s.lock();
            process::die();
        });
        let early = s.mutex.try_lock();
        if early == Some(Acquired::Clean) {
            s.unlock();
        }
        victim.join().unwrap();
        if early != Some(Acquired::OwnerDied) {
            assert_eq!(s.mutex.try_lock(), Some(Acquired::OwnerDied));
        }
        s.unlock();
    });
}

#[test]
fn death_between_unlock_and_wake_only_delays_the_sleeper() {
    model(|| {
        process::enter(2);
        let s = Shared::new();
        let victim = spawn(1, &s, |s| {
            s.lock();
            // The unlock's swap lands, then the process dies before its FUTEX_WAKE.
            s.mutex.forge_state(0, 0);
            process::die();
        });
        assert!(!s.lock());
        s.unlock();
        victim.join().unwrap();
    });
}
