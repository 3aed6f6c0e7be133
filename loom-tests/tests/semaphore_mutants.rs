//! The seeded bug of the semaphore, caught by loom: a reclaimer that takes a holder for dead
//! without the kernel's word (absence of evidence) gives back the permit of a live holder,
//! so that two processes hold the only permit at once. Its own test binary: the bug is
//! switched on for the whole process.

extern crate shmsync_loom as shmsync;

mod common;
#[path = "semaphore/pool.rs"]
#[allow(dead_code)]
mod pool;

#[test]
#[should_panic(expected = "a permit was made up")]
fn reclaiming_from_a_holder_not_known_dead_is_caught() {
    shmsync::__semaphore_test_hooks::seed_reclaim_live_bug(true);
    common::model(pool::a_live_holder_and_a_trier);
}
