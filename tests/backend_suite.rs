//! The backend test suite: every generic body in `tests/backend/` runs once per backend,
//! as `futex::<file>::<body>` and `pthread::<file>::<body>`, plus the tests that only make
//! sense for one backend. Linux only: the fork helpers wait on pidfds.
#![cfg(target_os = "linux")]

#[macro_use]
mod common;
mod backend;

// The groups `backend_tests!` names below: it calls `mutex::<body>::<B>()` and so on.
use backend::{condvar, mutex, poison};

backend_tests! {
    mutex {
        sysv_segment_counts_every_update_from_every_process,
        anonymous_box_counts_every_update_from_every_process,
        try_lock_and_try_lock_for_would_block_while_another_process_holds,
        lock_blocked_through_signals_without_sa_restart_succeeds,
        try_lock_for_blocked_through_signals_without_sa_restart_succeeds,
    }
    poison {
        killed_holder_poisons_and_leaves_the_data_usable,
        process_blocked_in_lock_wakes_poisoned_when_the_holder_is_killed,
        zombie_holder_is_detected_before_it_is_reaped,
        holder_killed_with_two_mutexes_poisons_both,
        panic_in_another_process_poisons,
    }
    condvar {
        wait_timeout_times_out_with_the_lock_held_again,
        ten_thousand_round_trips_between_processes,
        producer_and_consumer_processes_lose_no_item,
        waiter_killed_inside_wait_harms_nobody,
        waiter_wakes_poisoned_when_the_next_holder_dies,
        wait_through_signals_without_sa_restart_returns_normally,
    }
}
