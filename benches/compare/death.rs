//! Owner-death detection latency: a holder is SIGKILLed while another process's thread is
//! blocked in `lock()`; the time from the kill to that `lock()` returning (poisoned).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::anchors::boxed;
use crate::{fork, percentile, scale, sleep};

/// Kills per backend.
const KILLS: usize = 60;

macro_rules! latency {
    ($backend:ident) => {{
        #[derive(shmsync::ShmSafe)]
        #[repr(C)]
        struct Scene {
            held: AtomicU32,
            lock: shmsync::$backend::ShmMutex<u64>,
        }
        let scene: &'static Scene = boxed(Scene {
            held: AtomicU32::new(0),
            lock: shmsync::$backend::ShmMutex::new(0),
        });
        let mut samples = Vec::new();
        let kills = ((KILLS as f64) * scale()).max(50.0) as usize;
        for _ in 0..kills {
            scene.held.store(0, Ordering::SeqCst);
            let holder = fork(move || {
                let guard = scene.lock.lock().unwrap_or_else(|e| e.into_inner());
                scene.held.store(1, Ordering::SeqCst);
                std::mem::forget(guard);
                loop {
                    // SAFETY: pause just sleeps until a signal (here: SIGKILL).
                    unsafe { libc::pause() };
                }
            });
            while scene.held.load(Ordering::SeqCst) == 0 {
                std::hint::spin_loop();
            }
            let waiter = std::thread::spawn(move || {
                let guard = scene.lock.lock();
                let woke = Instant::now();
                let poisoned = guard.is_err();
                drop(guard);
                scene.lock.clear_poison();
                (woke, poisoned)
            });
            // Give the waiter time to block in the kernel (a benchmark may sleep).
            sleep(Duration::from_millis(5));
            let killed = Instant::now();
            // SAFETY: `holder` is our unreaped child; it stays a zombie until reaped below.
            unsafe { libc::kill(holder, libc::SIGKILL) };
            let (woke, poisoned) = waiter.join().expect("waiter thread");
            assert!(poisoned, "owner death must poison");
            samples.push(woke.saturating_duration_since(killed).as_secs_f64() * 1e3);
            let mut status = 0;
            // SAFETY: reaps our own child.
            unsafe { libc::waitpid(holder, &mut status, 0) };
        }
        samples
    }};
}

/// A semaphore holder SIGKILLed while another process's thread is blocked in `acquire()`:
/// the time from the kill to that `acquire()` returning with the dead holder's permit.
fn semaphore_latency() -> Vec<f64> {
    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    struct Scene {
        held: AtomicU32,
        sem: shmsync::ShmSemaphore,
    }
    let scene: &'static Scene = boxed(Scene {
        held: AtomicU32::new(0),
        sem: shmsync::ShmSemaphore::new(1),
    });
    let kills = ((KILLS as f64) * scale()).max(50.0) as usize;
    (0..kills)
        .map(|_| {
            scene.held.store(0, Ordering::SeqCst);
            let holder = fork(move || {
                std::mem::forget(scene.sem.acquire());
                scene.held.store(1, Ordering::SeqCst);
                loop {
                    // SAFETY: pause just sleeps until a signal (here: SIGKILL).
                    unsafe { libc::pause() };
                }
            });
            while scene.held.load(Ordering::SeqCst) == 0 {
                std::hint::spin_loop();
            }
            let waiter = std::thread::spawn(move || {
                let permit = scene.sem.acquire();
                let woke = Instant::now();
                drop(permit);
                woke
            });
            // Give the waiter time to block in the kernel (a benchmark may sleep).
            sleep(Duration::from_millis(5));
            let killed = Instant::now();
            // SAFETY: `holder` is our unreaped child; it stays a zombie until reaped below.
            unsafe { libc::kill(holder, libc::SIGKILL) };
            let woke = waiter.join().expect("waiter thread");
            let mut status = 0;
            // SAFETY: reaps our own child.
            unsafe { libc::waitpid(holder, &mut status, 0) };
            woke.saturating_duration_since(killed).as_secs_f64() * 1e3
        })
        .collect()
}

pub fn run() {
    println!("\n### Owner-death detection latency (holder SIGKILLed, waiter blocked, zombie not reaped)\n");
    println!("| backend | kills | p50 | p99 | max |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let rows = [
        ("pthread", latency!(pthread)),
        ("futex", latency!(futex)),
        ("ShmSemaphore (permit back)", semaphore_latency()),
    ];
    for (name, samples) in rows {
        println!(
            "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            samples.len(),
            percentile(&samples, 50.0),
            percentile(&samples, 99.0),
            percentile(&samples, 100.0)
        );
    }
}
