//! Owner death in the futex backend: holders killed while others block, zombie holders,
//! forged owners, and the fork matrix.

#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;
use std::time::Duration;

use common::{Exit, CHILD_DEADLINE};
use shmsync::futex::__test_hooks as hooks;
use shmsync::futex::{ShmCondvar, ShmMutex};
use shmsync::ShmBox;

/// A mutex, a condition variable and a few flags, shared with forked children.
type Shared = ShmBox<(ShmMutex<u32>, ShmCondvar, [AtomicU32; 2])>;

fn shared() -> Shared {
    ShmBox::new((
        ShmMutex::new(0),
        ShmCondvar::new(),
        [AtomicU32::new(0), AtomicU32::new(0)],
    ))
    .unwrap()
}

/// Locks, bumps the value, raises flag 0, then waits forever holding the lock (in a child).
fn hold_forever(s: &Shared) -> ! {
    let mut guard = s.0.lock().unwrap_or_else(|p| p.into_inner());
    *guard += 1;
    core::mem::forget(guard);
    s.2[0].store(1, Ordering::Release);
    loop {
        // SAFETY: pause only waits for a signal.
        unsafe { libc::pause() };
    }
}

/// Waits until flag `i` is raised.
fn wait_flag(s: &Shared, i: usize) {
    assert!(
        common::wait_until(CHILD_DEADLINE, || s.2[i].load(Ordering::Acquire) != 0),
        "flag {i} never raised"
    );
}

/// Waits until some locker has marked the lock word as slept on.
fn wait_contended(s: &Shared) {
    assert!(
        common::wait_until(CHILD_DEADLINE, || hooks::state(&s.0).0 & hooks::CONTENDED
            != 0),
        "no locker ever went to sleep"
    );
}

/// Exit code of a child that got the value `v` from a poisoned lock, or 1 for a clean lock.
fn expect_poisoned<T>(r: Result<T, std::sync::PoisonError<T>>) -> i32 {
    match r {
        Err(_) => 0,
        Ok(_) => 1,
    }
}

#[test]
fn sigkilled_holder_wakes_a_blocked_locker_with_poison() {
    let s = shared();
    // Fork: the holder locks and never unlocks.
    let holder = common::fork(|| hold_forever(&s));
    wait_flag(&s, 0);
    // Fork: a locker blocks behind the holder and must come back poisoned.
    let locker = common::fork(|| expect_poisoned(s.0.lock()));
    wait_contended(&s);
    assert_eq!(holder.kill(), Exit::Signal(libc::SIGKILL));
    locker.join();
    assert!(s.0.is_poisoned());
    let guard = s.0.lock().unwrap_err().into_inner();
    assert_eq!(*guard, 1);
}

#[test]
fn unreaped_killed_holder_is_detected_by_a_blocked_locker() {
    let s = shared();
    // Fork: the holder locks and never unlocks.
    let mut holder = common::fork(|| hold_forever(&s));
    wait_flag(&s, 0);
    // Fork: a locker blocks behind the holder and must come back poisoned.
    let locker = common::fork(|| expect_poisoned(s.0.lock()));
    wait_contended(&s);
    holder.signal(libc::SIGKILL);
    // The holder stays a zombie until after the locker has finished.
    locker.join();
    assert_eq!(holder.wait(), Exit::Signal(libc::SIGKILL));
}

#[test]
fn zombie_holder_is_taken_over_by_lock_and_try_lock() {
    for use_try_lock in [false, true] {
        let s = shared();
        // Fork: the child locks and exits without unlocking.
        let mut child = common::fork(|| {
            core::mem::forget(s.0.lock().unwrap());
            0
        });
        assert!(child.wait_exited(CHILD_DEADLINE), "child did not exit");
        // Not reaped: the holder is a zombie now.
        let poisoned = if use_try_lock {
            matches!(s.0.try_lock(), Err(TryLockError::Poisoned(_)))
        } else {
            matches!(
                s.0.try_lock_for(CHILD_DEADLINE),
                Err(TryLockError::Poisoned(_))
            )
        };
        assert!(
            poisoned,
            "zombie holder not detected (try_lock: {use_try_lock})"
        );
        assert_eq!(child.wait(), Exit::Code(0));
    }
}

#[test]
fn holder_killed_right_after_acquiring_poisons() {
    for _ in 0..5 {
        let s = shared();
        // Fork: the child locks and SIGKILLs itself at once.
        let mut child = common::fork(|| {
            let guard = s.0.lock().unwrap();
            // SAFETY: raise only sends a signal to this process.
            unsafe { libc::raise(libc::SIGKILL) };
            drop(guard);
            1
        });
        assert_eq!(child.wait(), Exit::Signal(libc::SIGKILL));
        assert!(s.0.lock().is_err());
    }
}

#[test]
fn owner_that_exited_holding_a_forged_word_is_detected() {
    let s = shared();
    // Fork: a child that publishes its liveness token and exits at once.
    let mut child = common::fork(|| {
        s.2[1].store(hooks::my_token(), Ordering::Release);
        0
    });
    assert_eq!(child.wait(), Exit::Code(0));
    let token = s.2[1].load(Ordering::Acquire);
    // The word names the dead child.
    hooks::forge(&s.0, token, 777);
    assert!(s.0.lock().is_err());
}

/// Forks a child that publishes its liveness token and sleeps until killed; returns it with
/// its token.
fn live_bystander(s: &Shared) -> (common::Child, u32) {
    // Fork: the child only publishes its token and waits for its SIGKILL.
    let child = common::fork(|| {
        s.2[1].store(hooks::my_token(), Ordering::Release);
        loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }
    });
    wait_flag(s, 1);
    (child, s.2[1].load(Ordering::Acquire))
}

#[test]
fn live_owner_named_by_a_forged_word_keeps_the_lock_until_killed() {
    let s = shared();
    let (child, token) = live_bystander(&s);
    hooks::forge(&s.0, token, 0);
    assert!(matches!(s.0.try_lock(), Err(TryLockError::WouldBlock)));
    assert!(matches!(
        s.0.try_lock_for(Duration::from_millis(30)),
        Err(TryLockError::WouldBlock)
    ));
    // Once it is killed, the next locker takes over.
    child.kill();
    assert!(matches!(
        s.0.try_lock_for(CHILD_DEADLINE),
        Err(TryLockError::Poisoned(_))
    ));
}

/// The dead holder's PID handed to a new, live process must not make the holder look alive:
/// liveness is the kernel's lock on the holder's slot, not its PID.
#[test]
fn a_live_process_that_got_the_dead_holders_pid_does_not_keep_it_alive() {
    let s = shared();
    let mut reused = false;
    for _ in 0..20 {
        // Fork: the holder locks and dies holding the lock.
        let holder = common::fork(|| hold_forever(&s));
        wait_flag(&s, 0);
        let pid = holder.pid();
        assert_eq!(holder.kill(), Exit::Signal(libc::SIGKILL));
        // As root, ask the kernel to hand out that PID next.
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            println!("skipped: /proc/sys/kernel/ns_last_pid is not writable here");
            return;
        }
        // Fork: a bystander that only waits to be killed.
        let bystander = common::fork(|| loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        });
        let got = bystander.pid() == pid;
        assert!(
            matches!(
                s.0.try_lock_for(CHILD_DEADLINE),
                Err(TryLockError::Poisoned(_))
            ),
            "the dead holder's lock was not taken over"
        );
        s.0.clear_poison();
        s.2[0].store(0, Ordering::Release);
        drop(bystander);
        if got {
            reused = true;
            break;
        }
    }
    if !reused {
        println!("skipped: the kernel never handed out the dead holder's PID again");
    }
}

/// A holder's forked child shares the holder's open files for a moment; it must not keep the
/// holder alive once the holder dies.
#[test]
fn a_holder_whose_forked_child_outlives_it_is_still_seen_dead() {
    let s = shared();
    // Fork: the holder locks, forks a child that outlives it, and dies holding the lock.
    let mut holder = common::fork(|| {
        let guard = s.0.lock().unwrap();
        // Fork: the grandchild only waits (bounded) for the parent test to let it go.
        let grandchild = common::fork(|| {
            s.2[1].store(1, Ordering::Release);
            i32::from(!common::wait_until(CHILD_DEADLINE, || {
                s.2[1].load(Ordering::Acquire) == 2
            }))
        });
        if !common::wait_until(CHILD_DEADLINE, || s.2[1].load(Ordering::Acquire) == 1) {
            return 3;
        }
        core::mem::forget(grandchild);
        core::mem::forget(guard);
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGKILL) };
        1
    });
    assert_eq!(holder.wait(), Exit::Signal(libc::SIGKILL));
    assert!(
        s.2[1].load(Ordering::Acquire) == 1,
        "the grandchild is not running"
    );
    // Well within the grandchild's life (it waits up to CHILD_DEADLINE for its release).
    assert!(
        matches!(
            s.0.try_lock_for(Duration::from_secs(10)),
            Err(TryLockError::Poisoned(_))
        ),
        "the holder's death went unseen while its child lives"
    );
    s.2[1].store(2, Ordering::Release);
}

#[test]
fn child_forked_while_the_parent_holds_the_lock_cannot_take_it() {
    let s = shared();
    let guard = s.0.lock().unwrap();
    // Fork: the child inherits the held word, which names the (live) parent.
    let child = common::fork(|| {
        let blocked = matches!(s.0.try_lock(), Err(TryLockError::WouldBlock))
            && matches!(
                s.0.try_lock_for(Duration::from_millis(20)),
                Err(TryLockError::WouldBlock)
            );
        i32::from(!blocked)
    });
    child.join();
    drop(guard);
    assert!(s.0.lock().is_ok());
}

#[test]
fn forked_child_locks_under_its_own_pid_and_unlocks_cleanly() {
    let s = shared();
    // Cache this process's identity before the fork.
    drop(s.0.lock().unwrap());
    let parent = hooks::my_token();
    // Fork: the child must not reuse the parent's cached identity.
    let child = common::fork(|| {
        let guard = s.0.lock().unwrap();
        let word = hooks::state(&s.0).0;
        drop(guard);
        let mine = hooks::my_token();
        i32::from(word & !hooks::CONTENDED != mine || mine == parent)
    });
    child.join();
    assert!(s.0.lock().is_ok());
}

#[test]
fn child_blocked_behind_the_parent_gets_a_clean_lock_when_it_unlocks() {
    let s = shared();
    let guard = s.0.lock().unwrap();
    // Fork: the child blocks until the parent unlocks.
    let child = common::fork(|| match s.0.lock() {
        Ok(mut g) => {
            *g += 1;
            0
        }
        Err(_) => 1,
    });
    wait_contended(&s);
    drop(guard);
    child.join();
    assert_eq!(*s.0.lock().unwrap(), 1);
}

#[test]
fn condvar_waiter_relocking_from_a_killed_notifier_gets_poison() {
    let s = shared();
    // Fork: the waiter sleeps on the condvar until the value is set, then must see poison.
    let waiter = common::fork(|| {
        let guard = s.0.lock().unwrap();
        s.2[1].store(1, Ordering::Release);
        expect_poisoned(s.1.wait_while(guard, |v| *v == 0))
    });
    wait_flag(&s, 1);
    // Fork: the notifier sets the value, notifies, and dies holding the lock.
    let mut notifier = common::fork(|| {
        let mut guard = s.0.lock().unwrap();
        *guard = 1;
        s.1.notify_all();
        core::mem::forget(guard);
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGKILL) };
        1
    });
    assert_eq!(notifier.wait(), Exit::Signal(libc::SIGKILL));
    waiter.join();
}

/// Prints how long a blocked locker takes to notice that its owner was SIGKILLed.
/// Run with `cargo test --release --test futex_owner_death -- --ignored --nocapture`.
#[test]
#[ignore]
fn owner_death_detection_latency() {
    use std::time::Instant;
    const ROUNDS: usize = 100;
    let mut samples = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let s = shared();
        // Fork: the holder locks and never unlocks.
        let holder = common::fork(|| hold_forever(&s));
        wait_flag(&s, 0);
        let killed_at = std::thread::scope(|scope| {
            let killer = scope.spawn(|| {
                wait_contended(&s);
                // Spread the kill over the waiter's check schedule.
                std::thread::sleep(Duration::from_micros((round as u64 * 7919) % 40_000));
                let at = Instant::now();
                holder.signal(libc::SIGKILL);
                at
            });
            assert!(s.0.lock().is_err());
            let done = Instant::now();
            done - killer.join().unwrap()
        });
        holder.kill();
        samples.push(killed_at);
    }
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "owner-death detection over {ROUNDS} kills: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(90),
        pct(99),
        samples[samples.len() - 1]
    );
}
