//! The seeded bug of the condition variable, caught by loom: a `notify_one` that woke one of
//! several sleepers and does not wake the untimed others loses the notification when the
//! woken one dies before re-taking the mutex. Its own test binary: the bug is switched on
//! for the whole process.
//!
//! A lost wake-up is a deadlock that loom reports ("deadlock; threads = ..."), but loom 0.7
//! cannot unwind out of it while a model thread sleeps in the futex emulation, and aborts the
//! process. So the test runs the model in a child process of itself and checks that the
//! child died of the deadlock report.

extern crate shmsync_loom as shmsync;

mod common;
#[path = "condvar/dying_waiter.rs"]
mod dying_waiter;

use std::process::Command;

/// Set in the child process that runs the seeded model.
const CHILD: &str = "SHMSYNC_CONDVAR_MUTANT_CHILD";
const NAME: &str = "a_notify_one_that_leaves_untimed_sleepers_asleep_is_caught";

#[test]
fn a_notify_one_that_leaves_untimed_sleepers_asleep_is_caught() {
    if std::env::var_os(CHILD).is_some() {
        shmsync::futex::__test_hooks::seed_no_herd_bug(true);
        common::model(dying_waiter::a_notification_spent_on_a_dying_waiter);
        // Reaching this line means loom found no lost wake-up: the parent sees a clean exit.
        return;
    }
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the child test process runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("deadlock; threads"),
        "the seeded bug went unnoticed: {}\n{stderr}",
        out.status
    );
}
