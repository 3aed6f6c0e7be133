//! The seeded bug of the barrier, caught by loom: a break that only the parties waiting at
//! that moment must see lets a party that arrives later into the next generation without
//! hearing of the death, where it waits forever. Its own test binary: the bug is switched
//! on for the whole process.

extern crate shmsync_loom as shmsync;

mod common;
#[path = "barrier/scenes.rs"]
#[allow(dead_code)]
mod scenes;

#[test]
#[should_panic(expected = "deadlock")]
fn a_break_owed_only_by_waiters_is_caught() {
    shmsync::__barrier_test_hooks::seed_break_owed_by_waiters_only(true);
    common::model(scenes::a_death_is_seen_by_a_waiter_and_by_a_late_arrival);
}
