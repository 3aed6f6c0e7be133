//! Mutual exclusion and wake-ups of the futex backend under load: threads of two processes
//! on one lock, and a condition-variable relay between processes.

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use shmsync::futex::{ShmCondvar, ShmMutex};
use shmsync::ShmBox;

const THREADS: u64 = 3;
const ROUNDS: u64 = 20_000;

/// Increments both halves of the pair under the lock from `THREADS` threads; a torn update
/// shows as unequal halves.
fn hammer(m: &ShmMutex<[u64; 2]>) -> bool {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    (0..ROUNDS).all(|_| {
                        let mut g = m.lock().unwrap();
                        let ok = g[0] == g[1];
                        g[0] += 1;
                        std::hint::spin_loop();
                        g[1] += 1;
                        ok
                    })
                })
            })
            .collect();
        workers.into_iter().all(|w| w.join().unwrap())
    })
}

#[test]
fn threads_of_two_processes_never_share_the_lock() {
    let m = ShmBox::new(ShmMutex::new([0u64; 2])).unwrap();
    // Fork: the child hammers the same lock from its own threads.
    let child = common::fork(|| i32::from(!hammer(&m)));
    assert!(hammer(&m));
    child.join();
    let g = m.lock().unwrap();
    assert_eq!(*g, [2 * THREADS * ROUNDS; 2]);
}

#[test]
fn condvar_relay_between_processes_loses_no_notification() {
    const TURNS: u32 = 2_000;
    let s = ShmBox::new((ShmMutex::new(0u32), ShmCondvar::new())).unwrap();
    let (m, cv) = (&s.0, &s.1);
    // Fork: the child takes the odd turns, the parent the even ones.
    let child = common::fork(|| {
        for turn in (1..TURNS).step_by(2) {
            let g = m.lock().unwrap();
            let (mut g, r) = cv
                .wait_timeout_while(g, common::CHILD_DEADLINE, |t| *t != turn)
                .unwrap();
            if r.timed_out() {
                return 1;
            }
            *g += 1;
            cv.notify_all();
        }
        0
    });
    for turn in (0..TURNS).step_by(2) {
        let g = m.lock().unwrap();
        let (mut g, r) = cv
            .wait_timeout_while(g, common::CHILD_DEADLINE, |t| *t != turn)
            .unwrap();
        assert!(!r.timed_out(), "turn {turn} never came");
        *g += 1;
        cv.notify_one();
    }
    child.join();
    assert_eq!(*m.lock().unwrap(), TURNS);
}

#[test]
fn timed_lock_of_a_held_lock_gives_up() {
    let m = ShmBox::new(ShmMutex::new(0u8)).unwrap();
    let held = m.lock().unwrap();
    // Fork: the child's timed attempts must give up while the parent holds the lock.
    let child = common::fork(|| {
        let gave_up = [0, 1, 5]
            .iter()
            .all(|&ms| m.try_lock_for(Duration::from_millis(ms)).is_err());
        i32::from(!gave_up)
    });
    child.join();
    drop(held);
    assert!(m.try_lock_for(Duration::from_millis(1)).is_ok());
}
