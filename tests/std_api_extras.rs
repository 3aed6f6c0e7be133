//! The API that std and parking_lot users expect beyond the fixed one: `From<T>`, deadline
//! forms, notification results, mapped guards, a condvar shared by several mutexes and
//! unlinking a segment by name alone. Every body runs on every backend.
#![cfg(target_os = "linux")]

#[macro_use]
mod common;

/// How long a test waits for another process before calling it hung.
const PATIENCE: Duration = Duration::from_secs(30);

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use shmsync::generic::{MappedShmMutexGuard, ShmMutexGuard};
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
    mapped_guard_gives_the_part_and_keeps_the_lock_until_dropped,
    try_map_that_declines_gives_back_the_guard_still_locked,
    panic_while_a_mapped_guard_is_held_poisons,
    panic_inside_map_poisons_and_unlocks,
    panic_inside_try_map_poisons_and_unlocks,
    guard_taken_while_panicking_and_mapped_does_not_poison,
    mapped_guard_excludes_and_poisons_across_processes,
    one_condvar_serves_waiters_of_two_mutexes_at_once,
    one_condvar_serves_one_mutex_then_another,
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
    assert!(
        start.elapsed() >= wait,
        "gave up early: {:?}",
        start.elapsed()
    );
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
    assert!(matches!(
        m.try_lock_until(past),
        Err(TryLockError::WouldBlock)
    ));
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
    let (guard, result) = cv
        .wait_while_until(guard, deadline, |ready| !*ready)
        .unwrap();
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
    let word = fields
        .next()
        .and_then(|a| usize::from_str_radix(a.trim_start_matches("0x"), 16).ok());
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

/// The value the mapped-guard bodies lock: a header and a payload to narrow to.
#[derive(shmsync::ShmSafe, Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Record {
    id: u32,
    payload: [u8; 8],
}

const RECORD: Record = Record {
    id: 1,
    payload: [0; 8],
};

fn mapped_guard_gives_the_part_and_keeps_the_lock_until_dropped<B: Backend>() {
    let m = Mutex::<B, _>::new(RECORD);
    let mut payload = ShmMutexGuard::map(m.lock().unwrap(), |r| &mut r.payload);
    payload[0] = 9;
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    let mut byte = MappedShmMutexGuard::map(payload, |p| &mut p[7]);
    *byte = 3;
    assert_eq!(format!("{byte:?} {byte}"), "3 3");
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    drop(byte);
    let all = m.try_lock().unwrap();
    assert_eq!(all.payload, [9, 0, 0, 0, 0, 0, 0, 3]);
    assert!(!m.is_poisoned());
}

fn try_map_that_declines_gives_back_the_guard_still_locked<B: Backend>() {
    let m = Mutex::<B, _>::new(RECORD);
    let guard = ShmMutexGuard::try_map(m.lock().unwrap(), |r| r.payload.get_mut(8)).unwrap_err();
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    let slice = ShmMutexGuard::map(guard, |r| &mut r.payload[..]);
    let mut slice = MappedShmMutexGuard::try_map(slice, |p| p.get_mut(9..)).unwrap_err();
    slice[1] = 1;
    let tail = MappedShmMutexGuard::try_map(slice, |p| p.get_mut(6..)).unwrap();
    assert_eq!(tail.len(), 2);
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    drop(tail);
    assert_eq!(m.lock().unwrap().payload[1], 1);
}

/// Panics without running the panic hook: nothing is printed, and a forked child takes no
/// lock of the hook that another thread of the parent may have held at the fork.
fn quiet_panic(message: &'static str) -> ! {
    std::panic::resume_unwind(Box::new(message))
}

/// Runs `f`, which must panic.
fn expect_panic(f: impl FnOnce()) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert!(result.is_err(), "the body did not panic");
}

fn panic_while_a_mapped_guard_is_held_poisons<B: Backend>() {
    let m = Mutex::<B, _>::new(RECORD);
    expect_panic(|| {
        let mut id = ShmMutexGuard::map(m.lock().unwrap(), |r| &mut r.id);
        *id = 2;
        quiet_panic("half an update");
    });
    let Err(TryLockError::Poisoned(poisoned)) = m.try_lock() else {
        panic!("the mutex is not poisoned, or still locked");
    };
    assert_eq!(poisoned.into_inner().id, 2);
}

fn panic_inside_map_poisons_and_unlocks<B: Backend>() {
    let m = Mutex::<B, _>::new(RECORD);
    expect_panic(|| {
        let _never = ShmMutexGuard::map(m.lock().unwrap(), |r| -> &mut u32 {
            r.id = 5;
            quiet_panic("inside map")
        });
    });
    let Err(TryLockError::Poisoned(poisoned)) = m.try_lock() else {
        panic!("the mutex is not poisoned, or still locked");
    };
    assert_eq!(poisoned.into_inner().id, 5);
}

fn panic_inside_try_map_poisons_and_unlocks<B: Backend>() {
    let m = Mutex::<B, _>::new(RECORD);
    expect_panic(|| {
        let guard = m.lock().unwrap();
        let _never =
            ShmMutexGuard::try_map(guard, |_| -> Option<&mut u32> { quiet_panic("try_map") });
    });
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    m.clear_poison();
    let part = ShmMutexGuard::map(m.lock().unwrap(), |r| &mut r.payload);
    expect_panic(move || {
        let _never =
            MappedShmMutexGuard::try_map(part, |_| -> Option<&mut u8> { quiet_panic("again") });
    });
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
}

/// Locks its mutex and maps the guard while its drop runs, which may be during a panic.
struct LocksInDrop<'a, B: Backend>(&'a Mutex<B, Record>);

impl<B: Backend> Drop for LocksInDrop<'_, B> {
    fn drop(&mut self) {
        let mut id = ShmMutexGuard::map(self.0.lock().unwrap(), |r| &mut r.id);
        *id += 1;
    }
}

fn guard_taken_while_panicking_and_mapped_does_not_poison<B: Backend>() {
    let m = Mutex::<B, _>::new(RECORD);
    expect_panic(|| {
        let _locks = LocksInDrop::<B>(&m);
        quiet_panic("unwinding runs the drop");
    });
    // As with std: only a panic that begins while a guard is held poisons.
    assert!(!m.is_poisoned());
    assert_eq!(m.try_lock().unwrap().id, 2);
}

fn mapped_guard_excludes_and_poisons_across_processes<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(RECORD), AtomicU32::new(0))).unwrap();
    let (m, found_held) = (&shared.0, &shared.1);
    let payload = ShmMutexGuard::map(m.lock().unwrap(), |r| &mut r.payload);
    // Fork: the child finds the lock held, then waits for it and panics under a mapped guard.
    let mut child = common::fork(|| {
        if !matches!(m.try_lock(), Err(TryLockError::WouldBlock)) {
            return 1;
        }
        found_held.store(1, Ordering::Release);
        let Ok(guard) = m.try_lock_for(PATIENCE) else {
            return 2;
        };
        let mut id = ShmMutexGuard::map(guard, |r| &mut r.id);
        *id = 7;
        quiet_panic("the child dies mid-update");
    });
    let reached = common::wait_until(PATIENCE, || found_held.load(Ordering::Acquire) == 1);
    assert!(reached, "the child never tried the lock");
    drop(payload);
    assert_eq!(child.wait(), common::Exit::Code(101));
    let Err(poisoned) = m.lock() else {
        panic!("a panic under a mapped guard in another process did not poison");
    };
    assert_eq!(poisoned.into_inner().id, 7);
}

#[test]
fn unlink_by_name_alone_removes_a_segment_of_any_type() {
    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    struct Board {
        lines: shmsync::ShmMutex<[u8; 32]>,
        posted: shmsync::ShmCondvar,
    }
    let name = format!("/shmsync-test-unlink-{}", std::process::id());
    let board = ShmBox::create(
        &name,
        Board {
            lines: shmsync::ShmMutex::new([0; 32]),
            posted: shmsync::ShmCondvar::new(),
        },
    )
    .unwrap();
    shmsync::unlink(&name).unwrap();
    let err = ShmBox::<Board>::open(&name)
        .err()
        .expect("the name is gone");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    // The open handle keeps working, and the name is free for a new segment.
    board.lines.lock().unwrap()[0] = 1;
    board.posted.notify_all();
    let again = ShmBox::create(&name, 5u64).unwrap();
    shmsync::unlink(&name).unwrap();
    assert_eq!(*again, 5);
    assert_eq!(
        shmsync::unlink(&name).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(
        ShmBox::<u64>::unlink(&name).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    for bad in ["no-slash", "/a/b", ""] {
        let err = shmsync::unlink(bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
    }
}

/// Two mutexes and the one condition variable that waiters of both use.
type TwoMutexes<B> = (Mutex<B, u32>, Mutex<B, u32>, Condvar<B>);

/// Forks a child that waits on `cv` with `mine` until its value is non-zero, and checks
/// that it then holds `mine`.
fn fork_waiter_on<B: Backend>(mine: &Mutex<B, u32>, cv: &Condvar<B>) -> common::Child {
    // Fork: the child only waits, checks and exits.
    common::fork(|| {
        let guard = mine.lock().unwrap();
        let Ok((guard, r)) = cv.wait_timeout_while(guard, PATIENCE, |go| *go == 0) else {
            return 1;
        };
        let holds_mine = matches!(mine.try_lock(), Err(TryLockError::WouldBlock));
        match (r.timed_out(), *guard, holds_mine) {
            (false, 1, true) => 0,
            _ => 2,
        }
    })
}

fn one_condvar_serves_waiters_of_two_mutexes_at_once<B: Backend>() {
    let shared: ShmBox<TwoMutexes<B>> = ShmBox::new((
        Mutex::<B, _>::new(0),
        Mutex::<B, _>::new(0),
        Condvar::<B>::new(),
    ))
    .unwrap();
    let (a, b, cv) = (&shared.0, &shared.1, &shared.2);
    let children = [fork_waiter_on::<B>(a, cv), fork_waiter_on::<B>(b, cv)];
    // Both sleep on the condvar at once, each having released its own mutex.
    notify_until::<B, _>(&children, cv, 2, || cv.notify_all());
    await_asleep::<B>(&children, cv);
    assert!(a.try_lock().is_ok() && b.try_lock().is_ok());
    *a.lock().unwrap() = 1;
    *b.lock().unwrap() = 1;
    cv.notify_all();
    children.into_iter().for_each(common::Child::join);
}

fn one_condvar_serves_one_mutex_then_another<B: Backend>() {
    let (a, b, cv) = (
        Mutex::<B, _>::new(1u8),
        Mutex::<B, _>::new(2u8),
        Condvar::<B>::new(),
    );
    let (guard, r) = cv.wait_timeout(a.lock().unwrap(), Duration::ZERO).unwrap();
    assert!(r.timed_out() && *guard == 1);
    drop(guard);
    let (guard, r) = cv.wait_timeout(b.lock().unwrap(), Duration::ZERO).unwrap();
    assert!(r.timed_out() && *guard == 2);
    assert!(a.try_lock().is_ok());
}
