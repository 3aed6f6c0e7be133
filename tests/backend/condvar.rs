//! Condition variables across processes: timeouts, ping-pong, producer/consumer, a waiter
//! killed inside `wait`, and signals.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmsync::ShmBox;

use crate::backend::*;
use crate::common::backends::{Backend, Condvar, Mutex};
use crate::common::{self, Exit};

pub fn wait_timeout_times_out_with_the_lock_held_again<B: Backend>() {
    let shared = ShmBox::new((Mutex::<B, _>::new(0u32), Condvar::<B>::new())).unwrap();
    let (m, cv) = (&shared.0, &shared.1);
    let timeout = Duration::from_millis(20);
    let start = Instant::now();
    let (mut guard, result) = cv.wait_timeout(m.lock().unwrap(), timeout).unwrap();
    assert!(result.timed_out());
    assert!(start.elapsed() >= timeout, "woke early");
    *guard += 1;
    let (guard, result) = cv.wait_timeout_while(guard, timeout, |n| *n < 10).unwrap();
    assert!(result.timed_out());
    assert_eq!(*guard, 1);
    drop(guard);
    assert!(matches!(m.try_lock(), Ok(g) if *g == 1));
}

/// Takes turns on `turn` with the other side: acts when `turn % 2 == parity`, until `turn`
/// reaches `end`. Returns whether no wait timed out.
fn take_turns<B: Backend>(m: &Mutex<B, u64>, cv: &Condvar<B>, parity: u64, end: u64) -> bool {
    let mut guard = m.lock().unwrap();
    loop {
        let (g, result) = cv
            .wait_timeout_while(guard, PATIENCE, |t| *t % 2 != parity && *t < end)
            .unwrap();
        if result.timed_out() {
            return false;
        }
        guard = g;
        if *guard >= end {
            return true;
        }
        *guard += 1;
        drop(guard);
        cv.notify_one();
        guard = m.lock().unwrap();
    }
}

pub fn ten_thousand_round_trips_between_processes<B: Backend>() {
    const ROUND_TRIPS: u64 = 10_000;
    let shared = ShmBox::new((Mutex::<B, _>::new(0u64), Condvar::<B>::new())).unwrap();
    let (m, cv) = (&shared.0, &shared.1);
    // Fork: the child plays the odd turns.
    let child = common::fork(|| match take_turns::<B>(m, cv, 1, 2 * ROUND_TRIPS) {
        true => 0,
        false => TIMED_OUT,
    });
    assert!(
        take_turns::<B>(m, cv, 0, 2 * ROUND_TRIPS),
        "parent timed out"
    );
    child.join();
    assert_eq!(*m.lock().unwrap(), 2 * ROUND_TRIPS);
}

/// Capacity of the shared queue.
const CAP: usize = 8;
/// Items the producer sends.
const ITEMS: usize = 2_000;

/// A bounded queue plus a record of what was consumed.
#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Queue {
    slots: [u32; CAP],
    head: u32,
    len: u32,
    done: u32,
    /// How many times each item was consumed.
    seen: [u8; ITEMS],
}

/// Pops items until the queue is empty and closed; 0, or `TIMED_OUT`.
fn consume<B: Backend>(q: &Mutex<B, Queue>, not_empty: &Condvar<B>, not_full: &Condvar<B>) -> i32 {
    loop {
        let (mut g, result) = not_empty
            .wait_timeout_while(q.lock().unwrap(), PATIENCE, |q| q.len == 0 && q.done == 0)
            .unwrap();
        if result.timed_out() {
            return TIMED_OUT;
        }
        if g.len == 0 {
            return 0;
        }
        let item = g.slots[g.head as usize];
        g.head = (g.head + 1) % CAP as u32;
        g.len -= 1;
        g.seen[item as usize] += 1;
        drop(g);
        not_full.notify_one();
    }
}

pub fn producer_and_consumer_processes_lose_no_item<B: Backend>() {
    const CONSUMERS: usize = 3;
    let queue = Queue {
        slots: [0; CAP],
        head: 0,
        len: 0,
        done: 0,
        seen: [0; ITEMS],
    };
    let shared = ShmBox::new((
        Mutex::<B, _>::new(queue),
        Condvar::<B>::new(),
        Condvar::<B>::new(),
    ))
    .unwrap();
    let (q, not_empty, not_full) = (&shared.0, &shared.1, &shared.2);
    let consumers: Vec<_> = (0..CONSUMERS)
        // Fork: each consumer pops until the queue is closed.
        .map(|_| common::fork(|| consume::<B>(q, not_empty, not_full)))
        .collect();
    for item in 0..ITEMS as u32 {
        let (mut g, result) = not_full
            .wait_timeout_while(q.lock().unwrap(), PATIENCE, |q| q.len as usize == CAP)
            .unwrap();
        assert!(!result.timed_out(), "consumers stopped consuming");
        let tail = (g.head + g.len) as usize % CAP;
        g.slots[tail] = item;
        g.len += 1;
        drop(g);
        not_empty.notify_one();
    }
    q.lock().unwrap().done = 1;
    not_empty.notify_all();
    consumers.into_iter().for_each(common::Child::join);
    let g = q.lock().unwrap();
    assert_eq!(g.len, 0);
    let wrong: Vec<_> = (0..ITEMS).filter(|&i| g.seen[i] != 1).collect();
    assert!(
        wrong.is_empty(),
        "items not consumed exactly once: {wrong:?}"
    );
}

/// Shared state of the waiter-killed test.
#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Gate {
    /// Waiters that reached `wait` (counted under the lock).
    entered: u32,
    /// The generation the waiters wait for.
    open: u32,
}

/// Forks a waiter that counts itself in, then waits for `open >= generation`.
fn waiter<B: Backend>(m: &Mutex<B, Gate>, cv: &Condvar<B>, generation: u32) -> common::Child {
    // Fork: the child waits on the condvar and reports how the wait ended.
    common::fork(move || {
        let mut g = m.lock().unwrap();
        g.entered += 1;
        match cv.wait_timeout_while(g, PATIENCE, |g| g.open < generation) {
            Ok((_, r)) if !r.timed_out() => 0,
            Ok(_) => TIMED_OUT,
            Err(_) => WRONG_RESULT,
        }
    })
}

/// Locks `m` once `entered` reaches `count`: by then every such waiter has released the
/// lock inside `wait`.
fn lock_when_entered<B: Backend>(m: &Mutex<B, Gate>, count: u32) {
    let ok = common::wait_until(PATIENCE, || m.lock().unwrap().entered >= count);
    assert!(ok, "waiters never reached wait");
}

/// Forks a process that opens generation `generation` and notifies (one or all); if
/// notifying blocks, the child misses its deadline and the test fails.
fn notifier<B: Backend>(
    m: &Mutex<B, Gate>,
    cv: &Condvar<B>,
    generation: u32,
    all: bool,
) -> common::Child {
    // Fork: the child notifies and exits.
    common::fork(move || {
        m.lock().unwrap().open = generation;
        if all {
            cv.notify_all();
        } else {
            cv.notify_one();
        }
        0
    })
}

pub fn waiter_killed_inside_wait_harms_nobody<B: Backend>() {
    let gate = Gate {
        entered: 0,
        open: 0,
    };
    let shared = ShmBox::new((Mutex::<B, _>::new(gate), Condvar::<B>::new())).unwrap();
    let (m, cv) = (&shared.0, &shared.1);
    let victim = waiter::<B>(m, cv, u32::MAX);
    let survivor = waiter::<B>(m, cv, 1);
    lock_when_entered::<B>(m, 2);
    await_sleeping(&victim);
    await_sleeping(&survivor);
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    notifier::<B>(m, cv, 1, false).join();
    survivor.join();
    notifier::<B>(m, cv, 1, true).join();
    // A newcomer still waits and wakes as usual.
    let newcomer = waiter::<B>(m, cv, 2);
    lock_when_entered::<B>(m, 3);
    notifier::<B>(m, cv, 2, false).join();
    newcomer.join();
}

pub fn waiter_wakes_poisoned_when_the_next_holder_dies<B: Backend>() {
    let gate = Gate {
        entered: 0,
        open: 0,
    };
    let shared = ShmBox::new((
        Mutex::<B, _>::new(gate),
        Condvar::<B>::new(),
        AtomicU32::new(0),
    ))
    .unwrap();
    let (m, cv, held) = (&shared.0, &shared.1, &shared.2);
    // Fork: the waiter must come back from `wait` with a poisoned guard.
    let waiting = common::fork(|| {
        let mut g = m.lock().unwrap();
        g.entered += 1;
        match cv.wait_timeout_while(g, PATIENCE, |g| g.open == 0) {
            Err(e) if e.get_ref().0.open == 1 => 0,
            Err(_) => WRONG_RESULT,
            Ok(_) => WRONG_RESULT,
        }
    });
    lock_when_entered::<B>(m, 1);
    // Fork: this child opens the gate, notifies, and dies holding the lock.
    let victim = common::fork(|| {
        let mut g = m.lock().unwrap();
        g.open = 1;
        cv.notify_all();
        held.store(1, Ordering::Release);
        park_forever()
    });
    await_flag(held, 1);
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    waiting.join();
}

pub fn wait_through_signals_without_sa_restart_returns_normally<B: Backend>() {
    let shared = ShmBox::new((
        Mutex::<B, _>::new(0u32),
        Condvar::<B>::new(),
        AtomicU32::new(0),
        AtomicU32::new(0),
    ))
    .unwrap();
    let (m, cv, ready, signals) = (&shared.0, &shared.1, &shared.2, &shared.3);
    // Fork: the child counts signals while it waits for the value to become 1.
    let child = common::fork(|| {
        count_sigusr1(signals);
        let guard = m.lock().unwrap();
        ready.store(1, Ordering::Release);
        match cv.wait_while(guard, |v| *v == 0) {
            Ok(v) if *v == 1 => 0,
            _ => WRONG_RESULT,
        }
    });
    await_flag(ready, 1);
    // Taking the lock proves the child released it inside `wait`.
    drop(m.lock().unwrap());
    await_sleeping(&child);
    pelt_with_signals(&child, signals, 50);
    *m.lock().unwrap() = 1;
    cv.notify_one();
    child.join();
}
