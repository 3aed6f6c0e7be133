//! Loom models of `ShmSemaphore`, with simulated processes (each model thread is one): never
//! more holders than permits, no lost wake-up, and a dead holder's permit given back once.

extern crate shmsync_loom as shmsync;

mod common;

use std::time::Duration;

use common::model;
use pool::{spawn, Pool};

#[path = "semaphore/pool.rs"]
mod pool;

/// At preemption bound 2 (the others run at the suite's bound): with parked permits, three
/// processes scanning three records take about 3 minutes in release at bound 3, which passes
/// too (`SHMSYNC_LOOM_DEEP=1 LOOM_MAX_PREEMPTIONS=3` runs it so).
#[test]
fn three_processes_never_hold_two_permits_at_once() {
    common::model_with_bound(2, || {
        let pool = Pool::new(2);
        let a = spawn(&pool, Pool::visit);
        let b = spawn(&pool, Pool::visit);
        pool.visit();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(pool.sem.available_permits(), 2);
    });
}

#[test]
fn a_release_reaches_a_blocked_acquirer() {
    model(|| {
        let pool = Pool::new(0);
        let consumer = spawn(&pool, |p| p.sem.acquire().forget());
        pool.sem.release(1);
        consumer.join().unwrap();
        assert_eq!(pool.sem.available_permits(), 0);
    });
}

#[test]
fn a_dead_holders_permit_reaches_a_blocked_acquirer() {
    model(|| {
        let pool = Pool::new(1);
        let dead = spawn(&pool, Pool::die_holding);
        pool.visit();
        dead.join().unwrap();
        pool.expect_all_back();
    });
}

#[test]
fn the_permit_of_a_dead_holder_is_given_back_once_to_two_survivors() {
    model(pool::two_survivors_of_a_dead_holder);
}

#[test]
fn a_live_holders_permit_is_never_reclaimed() {
    model(pool::a_live_holder_and_a_trier);
}

#[test]
fn a_timed_acquire_gets_the_permit_or_times_out_and_leaves_it() {
    model(|| {
        let pool = Pool::new(1);
        let holder = spawn(&pool, Pool::visit);
        let got = pool.sem.try_acquire_for(Duration::from_millis(1)).is_some();
        holder.join().unwrap();
        let _ = got;
        assert_eq!(pool.sem.available_permits(), 1);
    });
}
