//! `ShmBarrier`: a generation's round trip for two processes against a process-shared
//! `pthread_barrier_t`, and the time for a dead party to break a waiting barrier.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::anchors::{boxed, shared};
use crate::{
    fork, median, percentile, pin_to, print_section, reap, scale, sleep, unpin, Line, REPS,
};

/// A process-shared `pthread_barrier_t` for two, as a C program sets one up.
#[repr(C)]
struct RawBarrier {
    inner: UnsafeCell<libc::pthread_barrier_t>,
}

// SAFETY: a PTHREAD_PROCESS_SHARED barrier is made for sharing between processes.
unsafe impl Sync for RawBarrier {}

impl RawBarrier {
    fn wait(&self) {
        // SAFETY: initialised by `run`; returns 0 or PTHREAD_BARRIER_SERIAL_THREAD.
        unsafe { libc::pthread_barrier_wait(self.inner.get()) };
    }
}

/// The pthread barrier for two in fresh shared memory.
fn raw_barrier() -> &'static RawBarrier {
    shared(|p: *mut RawBarrier| {
        // SAFETY: `attr` is initialised before use and destroyed after; `p` is fresh shared
        // memory for one pthread_barrier_t.
        unsafe {
            let mut attr: libc::pthread_barrierattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_barrierattr_init(&mut attr), 0);
            let pshared = libc::PTHREAD_PROCESS_SHARED;
            assert_eq!(libc::pthread_barrierattr_setpshared(&mut attr, pshared), 0);
            let b = std::ptr::addr_of_mut!((*p).inner).cast();
            assert_eq!(libc::pthread_barrier_init(b, &attr, 2), 0);
            libc::pthread_barrierattr_destroy(&mut attr);
        }
    })
}

/// µs per generation of two processes (parent on `cpus.0`, child on `cpus.1`), each running
/// `waits(rounds)`.
fn round_trip(waits: &(impl Fn(u32) + Sync), rounds: u32, cpus: (usize, usize)) -> f64 {
    pin_to(cpus.0);
    let child = fork(|| {
        pin_to(cpus.1);
        waits(rounds);
        0
    });
    let start = Instant::now();
    waits(rounds);
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    reap(child);
    unpin();
    us
}

fn round_trips() {
    let shm: &'static shmsync::ShmBarrier = boxed(shmsync::ShmBarrier::new(2));
    let raw = raw_barrier();
    // Each process joins for itself (a party is per process) and leaves before it exits.
    let shm_waits = |rounds| {
        let mut party = shm.join().expect("a free place");
        for _ in 0..rounds {
            party.wait().expect("nobody dies");
        }
    };
    let raw_waits = |rounds| (0..rounds).for_each(|_| raw.wait());
    let names = ["ShmBarrier", "pthread_barrier_t pshared"];
    for (label, cpus, rounds) in [
        ("both on one CPU", (0, 0), (20_000.0 * scale()) as u32),
        (
            "on two CPUs",
            (0, 1.min(crate::num_cpus() - 1)),
            (4_000.0 * scale()) as u32,
        ),
    ] {
        let mut samples = vec![Vec::new(); names.len()];
        for rep in 0..=REPS {
            let row = [
                round_trip(&shm_waits, rounds, cpus),
                round_trip(&raw_waits, rounds, cpus),
            ];
            if rep > 0 {
                samples.iter_mut().zip(row).for_each(|(s, r)| s.push(r));
            }
        }
        let lines: Vec<Line> = names
            .iter()
            .zip(&samples)
            .map(|(name, s)| Line {
                name: name.to_string(),
                value: median(s),
                unit: "µs/generation",
                extra: String::new(),
            })
            .collect();
        print_section(
            &format!("Barrier generation, two processes {label}"),
            &lines,
            &[("ShmBarrier", "pthread_barrier_t pshared")],
        );
    }
}

/// A party SIGKILLed while another process's thread waits at the barrier: ms from the kill
/// to that wait returning `Broken`.
fn death_latency() -> Vec<f64> {
    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    struct Scene {
        joined: AtomicU32,
        barrier: shmsync::ShmBarrier,
    }
    let scene: &'static Scene = boxed(Scene {
        joined: AtomicU32::new(0),
        barrier: shmsync::ShmBarrier::new(2),
    });
    let kills = ((60.0 * scale()) as usize).max(50);
    (0..kills)
        .map(|_| {
            scene.joined.store(0, Ordering::SeqCst);
            let doomed = fork(move || {
                std::mem::forget(scene.barrier.join().expect("a free place"));
                scene.joined.store(1, Ordering::SeqCst);
                loop {
                    // SAFETY: pause just sleeps until a signal (here: SIGKILL).
                    unsafe { libc::pause() };
                }
            });
            while scene.joined.load(Ordering::SeqCst) == 0 {
                std::hint::spin_loop();
            }
            let waiter = std::thread::spawn(move || {
                let mut party = scene.barrier.join().expect("a free place");
                let broken = party.wait() == Err(shmsync::BarrierError::Broken);
                (Instant::now(), broken)
            });
            // Give the waiter time to block in the kernel (a benchmark may sleep).
            sleep(Duration::from_millis(5));
            let killed = Instant::now();
            // SAFETY: `doomed` is our unreaped child; it stays a zombie until reaped below.
            unsafe { libc::kill(doomed, libc::SIGKILL) };
            let (woke, broken) = waiter.join().expect("waiter thread");
            assert!(broken, "a dead party must break the barrier");
            let mut status = 0;
            // SAFETY: reaps our own child.
            unsafe { libc::waitpid(doomed, &mut status, 0) };
            woke.saturating_duration_since(killed).as_secs_f64() * 1e3
        })
        .collect()
}

pub fn run() {
    round_trips();
    let samples = death_latency();
    println!(
        "\n### A dead party breaks a waiting ShmBarrier (party SIGKILLed, zombie not reaped)\n"
    );
    println!("| kills | p50 | p99 | max | target |");
    println!("| ---: | ---: | ---: | ---: | --- |");
    println!(
        "| {} | {:.2} ms | {:.2} ms | {:.2} ms | ≤ 50 ms |",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        percentile(&samples, 100.0)
    );
}
