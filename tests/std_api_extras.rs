//! The API that std and parking_lot users expect beyond the fixed one: `From<T>`, deadline
//! forms, notification results, mapped guards, a condvar shared by several mutexes and
//! unlinking a segment by name alone. Every body runs on every backend.
#![cfg(target_os = "linux")]

#[macro_use]
mod common;

/// How long a test waits for another process before calling it hung.
const PATIENCE: Duration = Duration::from_secs(30);

use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shmsync::ShmBox;

use common::backends::{Backend, Condvar, Mutex};

backend_tests! {
    from_makes_an_unlocked_mutex_holding_the_value,
    try_lock_until_would_block_until_the_deadline_then_takes_a_free_lock,
    try_lock_until_a_passed_deadline_still_takes_a_free_lock,
    wait_until_times_out_at_the_deadline_with_the_lock_held_again,
    wait_while_until_returns_when_another_process_makes_the_condition_false,
    notify_one_and_notify_all_report_no_waiter_when_none_waits,
    notify_one_reports_the_sleeping_waiter_it_woke,
    notify_all_counts_the_sleeping_waiters_of_every_process,
}

fn from_makes_an_unlocked_mutex_holding_the_value<B: Backend>() {
    let m: Mutex<B, [u16; 3]> = [1, 2, 3].into();
    assert!(!m.is_poisoned());
    assert_eq!(*m.try_lock().unwrap(), [1, 2, 3]);
    assert_eq!(Mutex::<B, u8>::from(9).into_inner().unwrap(), 9);
}

fn try_lock_until_would_block_until_the_deadline_then_takes_a_free_lock<B: Backend>() {
    let m = Mutex::<B, _>::new(0u32);
    let held = m.lock().unwrap();
    let wait = Duration::from_millis(30);
    let start = Instant::now();
    let attempt = m.try_lock_until(start + wait);
    assert!(matches!(attempt, Err(TryLockError::WouldBlock)));
    assert!(start.elapsed() >= wait, "gave up early: {:?}", start.elapsed());
    drop(held);
    let far = Instant::now() + Duration::from_secs(3600);
    *m.try_lock_until(far).unwrap() += 1;
    assert_eq!(*m.lock().unwrap(), 1);
}

fn try_lock_until_a_passed_deadline_still_takes_a_free_lock<B: Backend>() {
    let m = Mutex::<B, _>::new(5u8);
    let past = Instant::now();
    assert_eq!(*m.try_lock_until(past).unwrap(), 5);
    let held = m.lock().unwrap();
    assert!(matches!(m.try_lock_until(past), Err(TryLockError::WouldBlock)));
    drop(held);
}

fn wait_until_times_out_at_the_deadline_with_the_lock_held_again<B: Backend>() {
    let (m, cv) = (Mutex::<B, _>::new(0u32), Condvar::<B>::new());
    let deadline = Instant::now() + Duration::from_millis(20);
    let (mut guard, result) = cv.wait_until(m.lock().unwrap(), deadline).unwrap();
    assert!(result.timed_out());
    assert!(Instant::now() >= deadline, "woke before the deadline");
    *guard += 1;
    // The same deadline, now passed: the condition is checked once more, no wait.
    let (guard, result) = cv.wait_while_until(guard, deadline, |n| *n < 5).unwrap();
    assert!(result.timed_out());
    assert_eq!(*guard, 1);
    drop(guard);
    assert!(m.try_lock().is_ok());
}

fn wait_while_until_returns_when_another_process_makes_the_condition_false<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(false), Condvar::<B>::new())).unwrap();
    let (m, cv) = (&shared.0, &shared.1);
    let guard = m.lock().unwrap();
    // Fork: the child sets the flag once it can lock, i.e. once the parent waits.
    let child = common::fork(|| {
        *m.lock().unwrap() = true;
        cv.notify_all();
        0
    });
    let deadline = Instant::now() + PATIENCE;
    let (guard, result) = cv.wait_while_until(guard, deadline, |ready| !*ready).unwrap();
    assert!(!result.timed_out(), "no notification before the deadline");
    assert!(*guard);
    drop(guard);
    child.join();
}

/// Whether process `pid` is asleep in a futex wait on the word at `addr` (from
/// `/proc/<pid>/syscall`: the system call number, then its arguments in hex).
fn asleep_on(pid: libc::pid_t, addr: usize) -> bool {
    let path = format!("/proc/{pid}/syscall");
    let line = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut fields = line.split_whitespace();
    let futex = fields.next() == Some(libc::SYS_futex.to_string().as_str());
    let word = fields.next().and_then(|a| usize::from_str_radix(a.trim_start_matches("0x"), 16).ok());
    futex && word == Some(addr)
}

/// Waits until every child sleeps in the kernel on the condition variable `cv`.
fn await_asleep<B: Backend>(children: &[common::Child], cv: &Condvar<B>) {
    let addr = cv as *const Condvar<B> as usize;
    for child in children {
        let asleep = common::wait_until(PATIENCE, || asleep_on(child.pid(), addr));
        assert!(asleep, "child {} never slept on the condvar", child.pid());
    }
}

/// Forks a child that waits on `cv` with `m` until the value is non-zero.
fn fork_waiter<B: Backend>(m: &Mutex<B, u32>, cv: &Condvar<B>) -> common::Child {
    // Fork: the child only waits and exits.
    common::fork(|| {
        let guard = m.lock().unwrap();
        match cv.wait_timeout_while(guard, PATIENCE, |go| *go == 0) {
            Ok((_, r)) if !r.timed_out() => 0,
            _ => 1,
        }
    })
}

/// Notifies with `notify` until it reports `expected` sleepers woken. A sleeper looks at
/// the condvar by itself every half second, and for that instant is not asleep; the
/// waiters' condition is still false, so those woken go back to sleep for the next try.
fn notify_until<B: Backend, N: PartialEq + std::fmt::Debug>(
    children: &[common::Child],
    cv: &Condvar<B>,
    expected: N,
    mut notify: impl FnMut() -> N,
) {
    let mut seen = Vec::new();
    for _ in 0..5 {
        await_asleep::<B>(children, cv);
        let woken = notify();
        if woken == expected {
            return;
        }
        seen.push(woken);
    }
    panic!("expected {expected:?} every time the waiters slept, got {seen:?}");
}

fn notify_one_and_notify_all_report_no_waiter_when_none_waits<B: Backend>() {
    let (m, cv) = (Mutex::<B, _>::new(()), Condvar::<B>::new());
    assert!(!cv.notify_one());
    assert_eq!(cv.notify_all(), 0);
    // A waiter that has come and gone leaves nothing to wake.
    let (_guard, r) = cv.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap();
    assert!(r.timed_out());
    assert!(!cv.notify_one());
    assert_eq!(cv.notify_all(), 0);
}

fn notify_one_reports_the_sleeping_waiter_it_woke<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(0u32), Condvar::<B>::new())).unwrap();
    let (m, cv) = (&shared.0, &shared.1);
    let children = [fork_waiter::<B>(m, cv)];
    notify_until::<B, _>(&children, cv, true, || cv.notify_one());
    *m.lock().unwrap() = 1;
    let [child] = children;
    cv.notify_one();
    child.join();
    assert!(!cv.notify_one());
}

fn notify_all_counts_the_sleeping_waiters_of_every_process<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(0u32), Condvar::<B>::new())).unwrap();
    let (m, cv) = (&shared.0, &shared.1);
    let children: Vec<_> = (0..3).map(|_| fork_waiter::<B>(m, cv)).collect();
    notify_until::<B, _>(&children, cv, 3, || cv.notify_all());
    *m.lock().unwrap() = 1;
    assert!(cv.notify_all() <= 3);
    children.into_iter().for_each(common::Child::join);
    assert_eq!(cv.notify_all(), 0);
}
