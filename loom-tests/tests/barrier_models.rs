//! Loom models of `ShmBarrier`, with simulated processes (each model thread is one): every
//! write before a wait is seen after it, one leader per generation, and a dead party breaks
//! the generation for every survivor instead of hanging it.

extern crate shmsync_loom as shmsync;

mod common;

use loom::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::model;
use scenes::spawn;
use shmsync::{BarrierError, ShmBarrier};

#[path = "barrier/scenes.rs"]
mod scenes;

/// Two parties, two generations: each writes its phase (Relaxed) before waiting and reads the
/// other's after; returns how many times it led.
fn lockstep(b: &ShmBarrier, marks: &[AtomicU32; 2], me: usize) -> u32 {
    let mut party = b.join().expect("a free place");
    let mut led = 0;
    for phase in 1..=2 {
        marks[me].store(phase, Ordering::Relaxed);
        led += u32::from(party.wait().expect("nobody dies").is_leader());
        assert!(
            marks[1 - me].load(Ordering::Relaxed) >= phase,
            "a write before the barrier was missed"
        );
    }
    led
}

#[test]
fn two_parties_pass_two_generations_in_lockstep_with_one_leader_each() {
    model(|| {
        let b = Arc::new(ShmBarrier::new(2));
        let marks = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let other = {
            let marks = marks.clone();
            spawn(&b, move |b| lockstep(b, &marks, 1))
        };
        let led = lockstep(&b, &marks, 0) + other.join().unwrap();
        assert_eq!(led, 2);
    });
}

#[test]
fn a_party_that_dies_before_arriving_breaks_the_wait_of_the_other() {
    model(|| {
        let b = Arc::new(ShmBarrier::new(2));
        let dead = spawn(&b, scenes::join_and_die);
        let got = scenes::join_and_wait(&b);
        dead.join().unwrap();
        // The dead party may have joined after this one arrived: either way, a break.
        assert_eq!(got, Err(BarrierError::Broken));
    });
}

#[test]
fn a_death_breaks_the_generation_for_a_waiter_and_a_late_arrival() {
    model(scenes::a_death_is_seen_by_a_waiter_and_by_a_late_arrival);
}

#[test]
fn a_timed_wait_completes_or_times_out_and_leaves_no_arrival() {
    model(|| {
        let b = Arc::new(ShmBarrier::new(2));
        let other = spawn(&b, |b| {
            let mut party = b.join().expect("a free place");
            party.wait_for(std::time::Duration::from_millis(1)).is_ok()
        });
        let mut me = b.join().expect("a free place");
        let mine = me.wait_for(std::time::Duration::from_millis(1)).is_ok();
        let theirs = other.join().unwrap();
        // Both arrived in one generation, or neither's arrival counted.
        assert_eq!(mine, theirs);
    });
}
