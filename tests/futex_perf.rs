//! Rough numbers for the futex backend, printed by `#[ignore]`d tests:
//! `cargo test --release --test futex_perf -- --ignored --nocapture --test-threads=1`.

#![cfg(target_os = "linux")]

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;
use std::time::Instant;

use shmsync::futex::ShmMutex;
use shmsync::ShmBox;

const ITERS: u32 = 20_000_000;

/// The textbook shared futex lock (0 unlocked, 1 locked, 2 contended), as a baseline.
struct RawWord(AtomicU32);

impl RawWord {
    #[inline]
    fn lock(&self) {
        if self
            .0
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }
    #[cold]
    fn lock_slow(&self) {
        while self.0.swap(2, Ordering::Acquire) != 0 {
            // SAFETY: the word is a live, aligned u32; a shared FUTEX_WAIT only reads it.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr(),
                    libc::FUTEX_WAIT,
                    2,
                    core::ptr::null::<libc::timespec>(),
                )
            };
        }
    }
    #[inline]
    fn unlock(&self) {
        if self.0.swap(0, Ordering::Release) == 2 {
            // SAFETY: FUTEX_WAKE only uses the address as a key.
            unsafe { libc::syscall(libc::SYS_futex, self.0.as_ptr(), libc::FUTEX_WAKE, 1) };
        }
    }
}

fn per_op(start: Instant, n: u32) -> f64 {
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

#[test]
#[ignore]
fn uncontended_lock_unlock() {
    let m = ShmBox::new(ShmMutex::new(0u64)).unwrap();
    let raw = RawWord(AtomicU32::new(0));
    for round in 0..3 {
        let t = Instant::now();
        for _ in 0..ITERS {
            *black_box(&m).lock().unwrap() += 1;
        }
        let ours = per_op(t, ITERS);
        let mut value = 0u64;
        let t = Instant::now();
        for _ in 0..ITERS {
            black_box(&raw).lock();
            value = black_box(value + 1);
            raw.unlock();
        }
        let base = per_op(t, ITERS);
        println!("round {round}: futex ShmMutex lock+inc+unlock {ours:.2} ns, raw 0/1/2 word {base:.2} ns");
    }
}

#[test]
#[ignore]
fn try_lock_of_a_held_lock() {
    let m = ShmBox::new(ShmMutex::new(0u64)).unwrap();
    let flag = ShmBox::new(AtomicU32::new(0)).unwrap();
    let n = 200_000;
    {
        let _held = m.lock().unwrap();
        // Another thread of this process: the word names this process, so no probe.
        std::thread::scope(|s| {
            s.spawn(|| {
                let t = Instant::now();
                for _ in 0..n {
                    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
                }
                println!(
                    "try_lock of a lock held by this process: {:.0} ns",
                    per_op(t, n)
                );
            });
        });
    }
    // Fork: the child holds the lock until killed.
    let child = common::fork(|| {
        core::mem::forget(m.lock().unwrap());
        flag.store(1, Ordering::Release);
        loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }
    });
    assert!(common::wait_until(common::CHILD_DEADLINE, || flag
        .load(Ordering::Acquire)
        == 1));
    let t = Instant::now();
    for _ in 0..n {
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    }
    println!(
        "try_lock of a lock held by another live process: {:.0} ns",
        per_op(t, n)
    );
    drop(child);
}

/// Spins for roughly `n` pause instructions: stand-in work inside and outside the lock.
fn work(n: u32) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

fn contend(inside: u32, outside: u32) {
    const N: u64 = 1_000_000;
    let m = ShmBox::new(ShmMutex::new(0u64)).unwrap();
    let go = ShmBox::new(AtomicU32::new(0)).unwrap();
    // Fork: the child increments N times under the lock, like the parent.
    let child = common::fork(|| {
        while go.load(Ordering::Acquire) == 0 {
            std::hint::spin_loop();
        }
        for _ in 0..N {
            let mut g = m.lock().unwrap();
            *g += 1;
            work(inside);
            drop(g);
            work(outside);
        }
        0
    });
    let t = Instant::now();
    go.store(1, Ordering::Release);
    for _ in 0..N {
        let mut g = m.lock().unwrap();
        *g += 1;
        work(inside);
        drop(g);
        work(outside);
    }
    child.join();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(*m.lock().unwrap(), 2 * N);
    println!(
        "two processes contending ({inside} pauses inside, {outside} outside): {:.2} Mlock/s",
        (2 * N) as f64 / secs / 1e6
    );
}

#[test]
#[ignore]
fn two_processes_contending() {
    contend(0, 0);
    contend(20, 20);
    contend(100, 100);
}
