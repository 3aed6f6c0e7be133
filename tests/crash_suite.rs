//! Crash and fault scenarios in the style of glibc's nptl robust-mutex tests, the kernel's
//! futex selftests and Boost.Interprocess's robust tests, run on every backend.
//!
//! `SHMSYNC_SOAK=N` multiplies the randomized rounds (CI runs with the default, 1).

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use common::backends::{Backend, Condvar, Mutex};
use common::{fork, wait_until, Exit, Rng};
use shmsync::generic::RawMutex;
use shmsync::{ShmBox, ShmSafe};

/// How many times the soak variants repeat their rounds.
fn soak() -> u32 {
    std::env::var("SHMSYNC_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let seed = std::env::var("SHMSYNC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(nanos);
    eprintln!("seed {seed} (set SHMSYNC_SEED to replay)");
    seed
}

/// Installs a no-op handler for `signal` without `SA_RESTART`, so blocking calls see EINTR.
fn interrupt_with(signal: i32) {
    extern "C" fn noop(_: i32) {}
    // SAFETY: sigaction is plain data; the handler is async-signal-safe (does nothing).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = noop as extern "C" fn(i32) as usize;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}

/// The address a process is blocked on in a `futex` system call, from `/proc/<pid>/syscall`
/// (the system call number, then its arguments in hex); `None` when it is elsewhere.
fn futex_wait_address(pid: i32) -> Option<usize> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut fields = line.split_whitespace();
    if fields.next()?.parse::<i64>().ok()? != libc::SYS_futex {
        return None;
    }
    usize::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()
}

// Every body below, run once per backend as `futex::<body>` and `pthread::<body>`.
backend_tests!(
    randomized_sigkill_never_hangs_or_hides_a_torn_update,
    death_right_after_locking_poisons_every_held_mutex,
    notify_one_loses_no_wakeup_over_1000_rounds_with_3_consumers,
    waiters_dying_one_after_another_leave_the_condvar_working,
    a_notification_spent_on_a_waiter_killed_before_relocking_is_not_lost,
    signals_at_1khz_cause_no_spurious_error_and_deadlines_hold,
    a_dead_owner_is_found_while_signals_keep_interrupting_the_waiter,
    one_segment_mapped_twice_shares_one_lock,
    unmapping_one_mapping_while_a_thread_finishes_unlocking_through_another_is_harmless,
    fork_matrix,
);

/// A value and its complement, written in two steps: a torn update shows.
#[derive(ShmSafe, Clone, Copy)]
#[repr(C)]
struct Pair {
    value: u64,
    check: u64,
}

impl Pair {
    const fn new() -> Pair {
        Pair {
            value: 0,
            check: !0,
        }
    }
    fn whole(&self) -> bool {
        self.check == !self.value
    }
}

const MUTEXES: usize = 16;

#[derive(ShmSafe)]
#[repr(C)]
struct Arena<B: Backend> {
    cells: [Mutex<B, Pair>; MUTEXES],
    progress: AtomicU64,
}

/// One thread of the doomed child: random locks, two-step updates, forever.
fn churn<B: Backend>(arena: &Arena<B>, seed: u64) -> ! {
    let mut rng = Rng::new(seed);
    loop {
        let first = rng.below(MUTEXES);
        let second = first + 1 + rng.below(MUTEXES - first);
        let mut guards = Vec::new();
        for i in [first, second].into_iter().filter(|&i| i < MUTEXES) {
            let attempt = match rng.below(3) {
                0 => arena.cells[i].lock().map_err(TryLockError::from),
                1 => arena.cells[i].try_lock(),
                _ => arena.cells[i].try_lock_for(Duration::ZERO),
            };
            match attempt {
                Ok(g) => guards.push(g),
                Err(TryLockError::Poisoned(p)) => guards.push(p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        for g in &mut guards {
            g.value = g.value.wrapping_add(1);
            for _ in 0..rng.below(50) {
                std::hint::spin_loop();
            }
            g.check = !g.value;
        }
        drop(guards);
        arena.progress.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn randomized_sigkill_never_hangs_or_hides_a_torn_update<B: Backend>() {
    let arena = ShmBox::new(Arena::<B> {
        cells: std::array::from_fn(|_| Mutex::<B, _>::new(Pair::new())),
        progress: AtomicU64::new(0),
    })
    .unwrap();
    let mut rng = Rng::new(seed());
    let rounds = 200 * soak();
    let (mut poisoned, mut torn_seen) = (0u64, 0u64);
    for round in 0..rounds {
        let start = arena.progress.load(Ordering::Relaxed);
        let target = start + 1 + rng.below(300) as u64;
        let child_seed = rng.next_u64();
        // Fork a multi-threaded child that churns until it is killed.
        let child = fork(|| {
            let arena = &*arena;
            std::thread::scope(|s| {
                for t in 1..4u64 {
                    s.spawn(move || churn::<B>(arena, child_seed ^ (t << 32)));
                }
                churn::<B>(arena, child_seed);
            });
            1
        });
        assert!(
            wait_until(Duration::from_secs(20), || {
                arena.progress.load(Ordering::Relaxed) >= target
            }),
            "round {round}: the child made no progress"
        );
        assert_eq!(child.kill(), Exit::Signal(libc::SIGKILL));
        for (i, cell) in arena.cells.iter().enumerate() {
            let mut g = match cell.try_lock_for(Duration::from_secs(10)) {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => {
                    poisoned += 1;
                    p.into_inner()
                }
                Err(TryLockError::WouldBlock) => {
                    panic!("round {round}: mutex {i} still held after its owner died")
                }
            };
            if !g.whole() {
                assert!(
                    cell.is_poisoned(),
                    "round {round}: torn update in mutex {i} without poison"
                );
                torn_seen += 1;
                g.check = !g.value;
            }
            drop(g);
            cell.clear_poison();
        }
    }
    eprintln!("{rounds} rounds, {rounds} kills, {poisoned} poisonings, {torn_seen} torn updates caught, 0 hangs");
}

pub fn death_right_after_locking_poisons_every_held_mutex<B: Backend>() {
    let pair = ShmBox::new([
        Mutex::<B, _>::new(Pair::new()),
        Mutex::<B, _>::new(Pair::new()),
    ])
    .unwrap();
    // Child: lock both, then exit without unlocking (the guards are forgotten).
    fork(|| {
        std::mem::forget(pair[0].lock().unwrap());
        std::mem::forget(pair[1].lock().unwrap());
        0
    })
    .join();
    for m in pair.iter() {
        assert!(matches!(
            m.try_lock_for(Duration::from_secs(10)),
            Err(TryLockError::Poisoned(_))
        ));
        assert!(m.is_poisoned());
        m.clear_poison();
        assert!(m.try_lock().is_ok());
    }
}

#[derive(ShmSafe)]
#[repr(C)]
struct Queue<B: Backend> {
    state: Mutex<B, [u64; 3]>, // [items, consumed, done]
    cv: Condvar<B>,
}

pub fn notify_one_loses_no_wakeup_over_1000_rounds_with_3_consumers<B: Backend>() {
    let q = ShmBox::new(Queue::<B> {
        state: Mutex::<B, _>::new([0; 3]),
        cv: Condvar::<B>::new(),
    })
    .unwrap();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            fork(|| loop {
                let g = q.state.lock().unwrap();
                let mut g = q.cv.wait_while(g, |s| s[0] == 0 && s[2] == 0).unwrap();
                if g[0] == 0 {
                    return 0;
                }
                g[0] -= 1;
                g[1] += 1;
            })
        })
        .collect();
    let rounds = 1000 * soak() as u64;
    for _ in 0..rounds {
        q.state.lock().unwrap()[0] += 1;
        q.cv.notify_one();
    }
    let drained = wait_until(Duration::from_secs(30), || {
        q.state.lock().unwrap()[1] == rounds
    });
    q.state.lock().unwrap()[2] = 1;
    q.cv.notify_all();
    assert!(
        drained,
        "lost wakeup: consumed {} of {rounds}",
        q.state.lock().unwrap()[1]
    );
    consumers.into_iter().for_each(common::Child::join);
}

/// Regression: a waiter woken by the notify burst and killed while it held the
/// re-taken mutex poisoned it, as it should, and the next `lock().unwrap()`
/// panicked. Waiters killed asleep on the condvar must leave no poison; waiters
/// killed amid notifications may have held the mutex, so poison is allowed then.
pub fn waiters_dying_one_after_another_leave_the_condvar_working<B: Backend>() {
    let q = ShmBox::new(Queue::<B> {
        state: Mutex::<B, _>::new([0; 3]),
        cv: Condvar::<B>::new(),
    })
    .unwrap();
    let cv_addr = &q.cv as *const _ as usize;
    for round in 0..6u64 {
        // Each waiter announces itself in slot 1, then waits forever.
        let waiter = fork(|| {
            let mut g = q.state.lock().unwrap();
            g[1] += 1;
            let _g = q.cv.wait_while(g, |_| true);
            1
        });
        assert!(wait_until(Duration::from_secs(10), || q
            .state
            .lock()
            .unwrap()[1]
            == round + 1));
        let amid_notifications = round % 2 == 1;
        if amid_notifications {
            // Kill it while notifications are flying: it may be asleep, blocked
            // on the mutex, or holding it.
            q.cv.notify_all();
            q.cv.notify_one();
            assert_eq!(waiter.kill(), Exit::Signal(libc::SIGKILL));
        } else {
            // Kill it asleep on the condvar's word, where it holds nothing.
            assert!(wait_until(Duration::from_secs(10), || {
                futex_wait_address(waiter.pid()) == Some(cv_addr)
            }));
            assert_eq!(waiter.kill(), Exit::Signal(libc::SIGKILL));
        }
        q.cv.notify_one();
        q.cv.notify_all();
        // The dead waiter's mutex is free; poisoned only if it died holding it.
        match q.state.try_lock_for(Duration::from_secs(10)) {
            Ok(g) => assert_eq!(g[1], round + 1),
            Err(TryLockError::Poisoned(p)) => {
                assert!(
                    amid_notifications,
                    "round {round}: a waiter killed asleep poisoned the mutex"
                );
                assert_eq!(p.into_inner()[1], round + 1);
                q.state.clear_poison();
            }
            Err(TryLockError::WouldBlock) => {
                panic!("round {round}: the mutex is still held after its waiter died")
            }
        }
    }
    // A newcomer still gets woken.
    let newcomer = fork(|| {
        let g = q.state.lock().unwrap();
        let g = q.cv.wait_while(g, |s| s[2] == 0).unwrap();
        if g[2] == 1 {
            0
        } else {
            1
        }
    });
    q.state.lock().unwrap()[2] = 1;
    q.cv.notify_all();
    newcomer.join();
}

/// Regression: `notify_one` woke a waiter that was then killed before it re-took
/// the mutex, and the other waiter slept on forever.
pub fn a_notification_spent_on_a_waiter_killed_before_relocking_is_not_lost<B: Backend>() {
    let q = ShmBox::new(Queue::<B> {
        state: Mutex::<B, _>::new([0; 3]),
        cv: Condvar::<B>::new(),
    })
    .unwrap();
    let cv_addr = &q.cv as *const _ as usize;
    // Two waiters for slot 2 ("go"); each counts itself in slot 1 first.
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            fork(|| {
                let mut g = q.state.lock().unwrap();
                g[1] += 1;
                let g = q.cv.wait_while(g, |s| s[2] == 0).unwrap();
                if g[2] == 1 {
                    0
                } else {
                    1
                }
            })
        })
        .collect();
    let pids: Vec<i32> = waiters.iter().map(|w| w.pid()).collect();
    // Both asleep on the condvar's word.
    assert!(wait_until(Duration::from_secs(10), || {
        pids.iter().all(|&p| futex_wait_address(p) == Some(cv_addr))
    }));
    let mut held = q.state.lock().unwrap();
    q.cv.notify_one();
    // The woken one now blocks on the mutex we hold: find it and kill it there.
    let mut woken = None;
    assert!(wait_until(Duration::from_secs(10), || {
        woken = pids
            .iter()
            .position(|&p| futex_wait_address(p).is_some_and(|a| a != cv_addr));
        woken.is_some()
    }));
    let mut waiters = waiters;
    let victim = waiters.remove(woken.unwrap());
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    // The notification is spent; the survivor must still see "go".
    held[2] = 1;
    drop(held);
    let mut survivor = waiters.pop().unwrap();
    assert_eq!(
        survivor.wait_timeout(Duration::from_secs(10)),
        Some(Exit::Code(0)),
        "the surviving waiter never woke"
    );
}

pub fn signals_at_1khz_cause_no_spurious_error_and_deadlines_hold<B: Backend>() {
    let q = ShmBox::new(Queue::<B> {
        state: Mutex::<B, _>::new([0; 3]),
        cv: Condvar::<B>::new(),
    })
    .unwrap();
    // Set by the child once its timed lock has returned.
    let timed_done = ShmBox::new(AtomicU64::new(0)).unwrap();
    let held = q.state.lock().unwrap();
    // Installed before the fork so the child has it from its first instruction; a
    // no-op handler in the test process itself is harmless.
    interrupt_with(libc::SIGUSR1);
    let child = fork(|| {
        // Blocked `try_lock_for` under signals: times out, no earlier.
        let started = Instant::now();
        let timed = q.state.try_lock_for(Duration::from_millis(150));
        let waited = started.elapsed();
        timed_done.store(1, Ordering::SeqCst);
        if !matches!(timed, Err(TryLockError::WouldBlock)) || waited < Duration::from_millis(150) {
            return 2;
        }
        // Blocked `lock` under signals: returns only when the parent unlocks.
        let mut g = q.state.lock().unwrap();
        g[1] = 1;
        // `wait_timeout` under signals: times out after its deadline, not before.
        let started = Instant::now();
        let (g, r) =
            q.cv.wait_timeout_while(g, Duration::from_millis(150), |_| true)
                .unwrap();
        if !r.timed_out() || started.elapsed() < Duration::from_millis(150) {
            return 3;
        }
        drop(g);
        0
    });
    // Signals every millisecond until `until` holds; false if it never does.
    let pump = |until: &mut dyn FnMut() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if until() {
                return true;
            }
            child.signal(libc::SIGUSR1);
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    };
    // Signals into the timed lock: the lock stays held until it has returned.
    assert!(
        pump(&mut || timed_done.load(Ordering::SeqCst) == 1),
        "the timed lock never returned"
    );
    // Then into the blocking `lock`: once the child sleeps on the mutex, 100 more.
    let lock_at = &q.state as *const _ as usize;
    let lock_bytes = lock_at..lock_at + std::mem::size_of_val(&q.state);
    let mut blocked = || futex_wait_address(child.pid()).is_some_and(|a| lock_bytes.contains(&a));
    assert!(pump(&mut blocked), "the child never blocked in `lock`");
    let mut sent = 0;
    assert!(pump(&mut || {
        sent += 1;
        sent > 100
    }));
    drop(held);
    // Signals into the wait_timeout, until the child is done.
    pump(&mut || child.wait_exited(Duration::ZERO));
    child.join();
    assert_eq!(q.state.lock().unwrap()[1], 1);
}

#[derive(ShmSafe)]
#[repr(C)]
struct Doomed<B: Backend> {
    lock: Mutex<B, u64>,
    held: AtomicU64,
    die: AtomicU64,
}

/// Regression: early wake-ups (EINTR from a signal without SA_RESTART) arriving
/// faster than the owner-probe interval used to postpone the probe forever.
pub fn a_dead_owner_is_found_while_signals_keep_interrupting_the_waiter<B: Backend>() {
    let s = ShmBox::new(Doomed::<B> {
        lock: Mutex::<B, _>::new(0),
        held: AtomicU64::new(0),
        die: AtomicU64::new(0),
    })
    .unwrap();
    interrupt_with(libc::SIGUSR1);
    let holder = fork(|| {
        std::mem::forget(s.lock.lock().unwrap());
        s.held.store(1, Ordering::SeqCst);
        if wait_until(Duration::from_secs(30), || {
            s.die.load(Ordering::SeqCst) == 1
        }) {
            0
        } else {
            1
        }
    });
    assert!(wait_until(Duration::from_secs(10), || s
        .held
        .load(Ordering::SeqCst)
        == 1));
    let tid = std::sync::OnceLock::new();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            // SAFETY: pthread_self has no preconditions.
            tid.set(unsafe { libc::pthread_self() }).unwrap();
            s.lock.lock().is_err()
        });
        assert!(wait_until(Duration::from_secs(10), || tid.get().is_some()));
        let tid = *tid.get().unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(20);
        while !waiter.is_finished() && Instant::now() < deadline {
            // SAFETY: the waiter thread is alive (not finished), so `tid` names it.
            unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
            // Let the waiter's probe interval grow to its longest before the owner
            // dies; the signals keep coming every 2 ms either way.
            if started.elapsed() > Duration::from_millis(300) {
                s.die.store(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            waiter.is_finished(),
            "the waiter never noticed its owner's death"
        );
        assert!(
            waiter.join().unwrap(),
            "the dead owner's lock came back unpoisoned"
        );
    });
    holder.join();
}

pub fn one_segment_mapped_twice_shares_one_lock<B: Backend>() {
    let name = common::unique_name(&format!("twice-{}", B::R::ID.name()));
    let first = ShmBox::create(&name, Mutex::<B, _>::new(0u64)).unwrap();
    let second = ShmBox::<Mutex<B, u64>>::open(&name).unwrap();
    assert_ne!(&*first as *const _ as usize, &*second as *const _ as usize);
    let held = first.lock().unwrap();
    assert!(matches!(second.try_lock(), Err(TryLockError::WouldBlock)));
    drop(held);
    *second.lock().unwrap() += 1;
    // A child maps it a third time, at whatever address it gets.
    fork(|| match ShmBox::<Mutex<B, u64>>::open(&name) {
        Ok(third) => {
            *third.lock().unwrap() += 1;
            0
        }
        Err(_) => 1,
    })
    .join();
    ShmBox::<Mutex<B, u64>>::unlink(&name).unwrap();
    assert_eq!(*second.lock().unwrap(), 2);
    assert_eq!(*first.lock().unwrap(), 2);
}

#[derive(ShmSafe)]
#[repr(C)]
struct Guarded<B: Backend> {
    lock: Mutex<B, u64>,
    canary: [u64; 4],
}

const CANARY: [u64; 4] = [0x5348_4d53_594e_4331, !0, 0, 0xdead_beef_cafe_f00d];

pub fn unmapping_one_mapping_while_a_thread_finishes_unlocking_through_another_is_harmless<
    B: Backend,
>() {
    for round in 0..100u64 {
        let name = common::unique_name(&format!("unmap-{}", B::R::ID.name()));
        let a = ShmBox::create(
            &name,
            Guarded::<B> {
                lock: Mutex::<B, _>::new(0),
                canary: CANARY,
            },
        )
        .unwrap();
        let b = ShmBox::<Guarded<B>>::open(&name).unwrap();
        ShmBox::<Guarded<B>>::unlink(&name).unwrap();
        let held = a.lock.lock().unwrap();
        std::thread::scope(|s| {
            // Blocks on the lock through mapping B, then unlocks and unmaps B while
            // the first thread may still be inside its unlock (its futex wake).
            let waiter = s.spawn(move || {
                *b.lock.lock().unwrap() += 1;
                drop(b);
            });
            // Released at once: over the rounds the waiter finds the lock held
            // (and sleeps) or already free, in varying interleavings.
            drop(held);
            waiter.join().unwrap();
        });
        let value = *a.lock.lock().unwrap();
        assert_eq!(value, 1, "round {round}");
        assert_eq!(
            a.canary, CANARY,
            "round {round}: memory next to the lock changed"
        );
    }
}

pub fn fork_matrix<B: Backend>() {
    let m = ShmBox::new(Mutex::<B, _>::new(0u32)).unwrap();
    let held = m.lock().unwrap();
    // The parent holds the lock at fork: the child cannot take it.
    fork(|| match m.try_lock() {
        Err(TryLockError::WouldBlock) => 0,
        _ => 1,
    })
    .join();
    // The child's exit released nothing: another child still cannot take it.
    fork(|| match m.try_lock_for(Duration::from_millis(20)) {
        Err(TryLockError::WouldBlock) => 0,
        _ => 1,
    })
    .join();
    drop(held);
    // A child that locks and exits without unlocking leaves poison.
    fork(|| {
        std::mem::forget(m.lock().unwrap());
        0
    })
    .join();
    assert!(matches!(
        m.try_lock_for(Duration::from_secs(10)),
        Err(TryLockError::Poisoned(_))
    ));
    m.clear_poison();
    assert!(m.try_lock().is_ok());
}

mod futex_narrow_windows {
    use super::*;
    use shmsync::futex::__test_hooks as hooks;
    use shmsync::futex::ShmMutex;
    use shmsync::ShmBox;

    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    struct Scene {
        lock: ShmMutex<u64>,
        waiting: AtomicU64,
    }

    /// The holder dies between its unlock's swap (the word is 0) and its futex wake: the
    /// sleeping waiter must still get the lock, cleanly, at its next check.
    #[test]
    fn death_between_the_unlock_swap_and_the_wake_strands_no_waiter() {
        let scene = ShmBox::new(Scene {
            lock: ShmMutex::new(0),
            waiting: AtomicU64::new(0),
        })
        .unwrap();
        let holder = fork(|| {
            std::mem::forget(scene.lock.lock().unwrap());
            loop {
                // SAFETY: pause only sleeps until a signal arrives.
                unsafe { libc::pause() };
            }
        });
        assert!(wait_until(Duration::from_secs(10), || hooks::state(
            &scene.lock
        )
        .0 != 0));
        let waiter = fork(|| {
            scene.waiting.store(1, Ordering::SeqCst);
            match scene.lock.lock() {
                Ok(mut g) => {
                    *g += 1;
                    0
                }
                Err(_) => 2, // a clean release must not poison
            }
        });
        // Wait until the waiter sleeps on the word (it sets CONTENDED before sleeping).
        assert!(wait_until(Duration::from_secs(10), || {
            scene.waiting.load(Ordering::SeqCst) == 1
                && hooks::state(&scene.lock).0 & hooks::CONTENDED != 0
        }));
        // The holder's swap(0) happens, then it dies before waking anyone.
        hooks::forge(&scene.lock, 0, 0);
        assert_eq!(holder.kill(), Exit::Signal(libc::SIGKILL));
        waiter.join();
        assert_eq!(*scene.lock.lock().unwrap(), 1);
    }

    /// A live owner that is stopped (SIGSTOP, a debugger) holding the lock is never robbed,
    /// however long it stays stopped.
    #[test]
    fn a_stopped_owner_is_never_robbed() {
        let scene = ShmBox::new(Scene {
            lock: ShmMutex::new(0),
            waiting: AtomicU64::new(0),
        })
        .unwrap();
        // A live process that publishes its token, then is stopped.
        let owner = fork(|| {
            scene
                .waiting
                .store(u64::from(hooks::my_token()), Ordering::SeqCst);
            loop {
                // SAFETY: pause only sleeps until a signal arrives.
                unsafe { libc::pause() };
            }
        });
        assert!(wait_until(Duration::from_secs(10), || scene
            .waiting
            .load(Ordering::SeqCst)
            != 0));
        let token = scene.waiting.load(Ordering::SeqCst) as u32;
        owner.signal(libc::SIGSTOP);
        hooks::forge(&scene.lock, token, 0);
        let attempt = scene.lock.try_lock_for(Duration::from_millis(1500));
        assert!(
            matches!(attempt, Err(std::sync::TryLockError::WouldBlock)),
            "a live owner was robbed"
        );
        owner.signal(libc::SIGCONT);
        assert_eq!(owner.kill(), Exit::Signal(libc::SIGKILL));
        assert!(scene.lock.lock().is_err(), "the owner's death went unseen");
    }
}

mod pthread_leaked_guards {
    use super::*;

    /// Whether the page holding `addr` is mapped (`mincore` fails with ENOMEM otherwise).
    fn is_mapped(addr: usize) -> bool {
        let page = addr & !4095;
        let mut residency = 0u8;
        // SAFETY: mincore only inspects the address and writes one byte into `residency`.
        unsafe { libc::mincore(page as *mut libc::c_void, 1, &mut residency) == 0 }
    }
    use shmsync::pthread::ShmMutex;
    use shmsync::ShmBox;

    /// Regression: a pthread mutex whose guard was leaked stays on glibc's robust list; once
    /// its box was unmapped, locking another robust mutex wrote a list pointer into whatever
    /// memory was mapped at the old address next (or crashed).
    #[test]
    fn dropping_a_box_whose_pthread_guard_was_leaked_corrupts_nothing() {
        // In a child: a crash there is a failed exit status, not a dead test harness.
        fork(|| {
            let leaked = ShmBox::new(ShmMutex::new(0u64)).unwrap();
            let leaked_at = &*leaked as *const _ as usize;
            std::mem::forget(leaked.lock().unwrap());
            drop(leaked);
            // Kept mapped: glibc's robust list still points into it.
            if !is_mapped(leaked_at) {
                return 2;
            }
            // A box whose guards were all dropped is unmapped as usual.
            let clean = ShmBox::new(ShmMutex::new(0u64)).unwrap();
            let clean_at = &*clean as *const _ as usize;
            *clean.lock().unwrap() += 1;
            drop(clean);
            if is_mapped(clean_at) {
                return 3;
            }
            let fillers: Vec<_> = (0..8).map(|_| ShmBox::new([0u8; 4096]).unwrap()).collect();
            let other = ShmBox::new(ShmMutex::new(0u64)).unwrap();
            for _ in 0..3 {
                *other.lock().unwrap() += 1;
            }
            let untouched = fillers.iter().all(|f| f.iter().all(|&b| b == 0));
            if untouched && *other.lock().unwrap() == 3 {
                0
            } else {
                1
            }
        })
        .join();
    }
}

/// A semaphore churned by a multi-threaded child: acquire, count, release, with `acquire`,
/// `try_acquire` and `try_acquire_for` mixed.
#[derive(ShmSafe)]
#[repr(C)]
struct Turnstile {
    sem: shmsync::ShmSemaphore,
    progress: AtomicU64,
}

const TURNSTILE_PERMITS: u32 = 3;

fn churn_turnstile(t: &Turnstile, seed: u64) {
    let mut rng = Rng::new(seed);
    loop {
        let permit = match rng.below(3) {
            0 => Some(t.sem.acquire()),
            1 => t.sem.try_acquire(),
            _ => t
                .sem
                .try_acquire_for(Duration::from_micros(rng.below(200) as u64)),
        };
        t.progress.fetch_add(1, Ordering::Relaxed);
        if rng.below(4) == 0 {
            std::thread::yield_now();
        }
        drop(permit);
    }
}

/// SIGKILL at random points of acquiring, holding and releasing: afterwards every permit
/// comes back, none is made up, and no holder record stays taken.
#[test]
#[cfg(target_os = "linux")]
fn randomized_sigkill_of_semaphore_holders_loses_and_makes_up_no_permit() {
    use shmsync::__semaphore_test_hooks as hooks;
    let t = ShmBox::new(Turnstile {
        sem: shmsync::ShmSemaphore::new(TURNSTILE_PERMITS),
        progress: AtomicU64::new(0),
    })
    .unwrap();
    let mut rng = Rng::new(seed());
    let rounds = 100 * soak();
    for round in 0..rounds {
        let target = t.progress.load(Ordering::Relaxed) + 1 + rng.below(500) as u64;
        let child_seed = rng.next_u64();
        // Fork a multi-threaded child that churns until it is killed.
        let child = fork(|| {
            let t = &*t;
            std::thread::scope(|s| {
                for k in 1..4u64 {
                    s.spawn(move || churn_turnstile(t, child_seed ^ (k << 32)));
                }
                churn_turnstile(t, child_seed);
            });
            1
        });
        assert!(
            wait_until(Duration::from_secs(20), || {
                t.progress.load(Ordering::Relaxed) >= target
            }),
            "round {round}: the child made no progress"
        );
        assert_eq!(child.kill(), Exit::Signal(libc::SIGKILL));
        let permits: Vec<_> = (0..TURNSTILE_PERMITS)
            .map(|i| {
                t.sem
                    .try_acquire_for(Duration::from_secs(10))
                    .unwrap_or_else(|| panic!("round {round}: permit {i} never came back"))
            })
            .collect();
        assert!(
            t.sem.try_acquire().is_none(),
            "round {round}: a permit was made up"
        );
        drop(permits);
        assert_eq!(t.sem.available_permits(), TURNSTILE_PERMITS);
        // Records of the dead child may still name it (a death between claiming a record and
        // taking a permit leaves one), but none may hold a guard's permit (parked ones are
        // free to take).
        let (state, records) = hooks::state(&t.sem);
        let parked = (0..hooks::RECORDS)
            .filter(|&i| records[i] & hooks::PARKED != 0)
            .fold(0u64, |bits, i| bits | 1 << i);
        let held = (state >> 32) & ((1 << hooks::RECORDS) - 1) & !parked;
        assert_eq!(held, 0, "round {round}: records {records:?} hold {held:#x}");
    }
    eprintln!("{rounds} rounds, {rounds} kills, 0 permits lost or made up, 0 hangs");
}

/// A barrier of three: two survivors that wait round after round, and a doomed third party,
/// replaced after each SIGKILL, that waits, times out and rejoins at random.
#[derive(ShmSafe)]
#[repr(C)]
struct Lineup {
    barrier: shmsync::ShmBarrier,
    progress: AtomicU64,
    stop: AtomicU64,
    /// Per survivor: 1 once it waits for the last time, 2 once that wait returned.
    state: [AtomicU64; 2],
    /// Per survivor: how many waits returned, and what each returned (1 Ok, 2 Broken).
    logged: [AtomicU64; 2],
    log: [[AtomicU8; LOG]; 2],
}

const LOG: usize = 1 << 15;

/// A survivor: logs every wait's outcome until a wait that began after `stop` returns;
/// exits 3 on a wait that times out (a hang).
fn survive(l: &Lineup, me: usize) -> i32 {
    let mut party = l.barrier.join().expect("a free place");
    loop {
        let last = l.stop.load(Ordering::SeqCst) != 0;
        l.state[me].store(u64::from(last), Ordering::SeqCst);
        let outcome = match party.wait_for(Duration::from_secs(20)) {
            Ok(_) => 1,
            Err(shmsync::BarrierError::Broken) => 2,
            Err(shmsync::BarrierError::TimedOut) => return 3,
        };
        // A long soak logs its first LOG outcomes only.
        let n = l.logged[me].fetch_add(1, Ordering::SeqCst) as usize;
        if let Some(slot) = l.log[me].get(n) {
            slot.store(outcome, Ordering::SeqCst);
        }
        if last {
            l.state[me].store(2, Ordering::SeqCst);
            return 0;
        }
    }
}

/// The doomed party: joins (taking a dead party's place), waits with random timeouts, and
/// leaves and rejoins at random, until killed.
fn churn_lineup(l: &Lineup, seed: u64) -> ! {
    let mut rng = Rng::new(seed);
    loop {
        let Some(mut party) = l.barrier.join() else {
            std::thread::yield_now();
            continue;
        };
        for _ in 0..rng.below(20) {
            let _ = match rng.below(2) {
                0 => party.wait_for(Duration::from_secs(20)),
                _ => party.wait_for(Duration::from_micros(rng.below(300) as u64)),
            };
            l.progress.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// SIGKILL a barrier party at random points of joining, waiting and leaving: the survivors
/// never hang, and see the same completed generations and the same breaks.
#[test]
#[cfg(target_os = "linux")]
fn randomized_sigkill_of_a_barrier_party_never_hangs_the_others() {
    use shmsync::__barrier_test_hooks as hooks;
    let l = ShmBox::new(Lineup {
        barrier: shmsync::ShmBarrier::new(3),
        progress: AtomicU64::new(0),
        stop: AtomicU64::new(0),
        state: Default::default(),
        logged: Default::default(),
        log: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU8::new(0))),
    })
    .unwrap();
    // Fork the two survivors; they wait round after round until told to stop.
    let survivors: Vec<_> = (0..2).map(|me| fork(|| survive(&l, me))).collect();
    let mut rng = Rng::new(seed());
    let rounds = 50 * soak();
    for round in 0..rounds {
        let target = l.progress.load(Ordering::Relaxed) + 1 + rng.below(50) as u64;
        let child_seed = rng.next_u64();
        // Fork the doomed party; it churns until killed.
        let child = fork(|| churn_lineup(&l, child_seed));
        assert!(
            wait_until(Duration::from_secs(20), || {
                l.progress.load(Ordering::Relaxed) >= target
            }),
            "round {round}: the doomed party made no progress"
        );
        assert_eq!(child.kill(), Exit::Signal(libc::SIGKILL));
    }
    // Once both survivors wait for the last time, one more party joining (in a dead party's
    // place: a break) or leaving while they wait (a break) ends the run for both, unless a
    // death ended it already.
    l.stop.store(1, Ordering::SeqCst);
    let state = |me: usize| l.state[me].load(Ordering::SeqCst);
    let both_done = || state(0) == 2 && state(1) == 2;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let arrived = (hooks::state(&l.barrier).0 as u32).count_ones();
            both_done() || (state(0) >= 1 && state(1) >= 1 && arrived == 2)
        }),
        "survivors {:?}, barrier {:x?}",
        [state(0), state(1)],
        hooks::state(&l.barrier)
    );
    if !both_done() {
        drop(l.barrier.join().expect("a free or dead place"));
    }
    for s in survivors {
        s.join();
    }
    // Both saw the same outcomes in the same order; the one that stopped later may have seen
    // one more break (the other leaving).
    let logs: Vec<Vec<u8>> = (0..2)
        .map(|me| {
            let n = (l.logged[me].load(Ordering::SeqCst) as usize).min(LOG);
            l.log[me][..n]
                .iter()
                .map(|o| o.load(Ordering::SeqCst))
                .collect()
        })
        .collect();
    let (short, long) = if logs[0].len() <= logs[1].len() {
        (&logs[0], &logs[1])
    } else {
        (&logs[1], &logs[0])
    };
    assert_eq!(
        short[..],
        long[..short.len()],
        "the survivors saw different outcomes"
    );
    assert!(
        long.len() == LOG
            || long.len() == short.len()
            || (long.len() == short.len() + 1 && long[short.len()] == 2),
        "the survivors' outcomes differ at the end: {:?} vs {:?}",
        &short[short.len().saturating_sub(3)..],
        &long[short.len().saturating_sub(3)..]
    );
    let count = |o: u8| short.iter().filter(|&&x| x == o).count();
    assert!(count(2) > 1, "no kill ever broke a generation");
    eprintln!(
        "{rounds} rounds, {rounds} kills, {} generations and {} breaks seen alike by both survivors, 0 hangs",
        count(1),
        count(2)
    );
}
