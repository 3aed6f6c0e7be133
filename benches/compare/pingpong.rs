//! Condvar ping-pong: a turn handed back and forth between parent and child.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use crate::anchors::{boxed, futex_wait, futex_wake, shared, RawPthreadCond, RawPthreadMutex};
use crate::{fork, median, pin_to, print_section, reap, scale, unpin, Line, REPS};

/// Whose turn it is: 0 = parent, 1 = child.
trait Turn: Sync + 'static {
    /// Gives the turn to `to` and wakes the other side.
    fn give(&self, to: u32);
    /// Waits for `me`'s turn.
    fn await_turn(&self, me: u32);
}

macro_rules! shmsync_turn {
    ($name:ident, $backend:ident) => {
        #[derive(shmsync::ShmSafe)]
        #[repr(C)]
        struct $name {
            turn: shmsync::$backend::ShmMutex<u32>,
            changed: shmsync::$backend::ShmCondvar,
        }
        impl Turn for $name {
            fn give(&self, to: u32) {
                *self.turn.lock().unwrap() = to;
                // Signal after unlocking, so the woken side does not run into a held lock.
                self.changed.notify_one();
            }
            fn await_turn(&self, me: u32) {
                let g = self.turn.lock().unwrap();
                drop(self.changed.wait_while(g, |t| *t != me).unwrap());
            }
        }
    };
}

shmsync_turn!(FutexTurn, futex);
shmsync_turn!(PthreadTurn, pthread);

/// A bare futex word holding the turn.
struct RawFutexTurn(AtomicU32);

impl Turn for RawFutexTurn {
    fn give(&self, to: u32) {
        self.0.store(to, Ordering::Release);
        futex_wake(&self.0, 1);
    }
    fn await_turn(&self, me: u32) {
        loop {
            let t = self.0.load(Ordering::Acquire);
            if t == me {
                return;
            }
            futex_wait(&self.0, t);
        }
    }
}

/// A pshared pthread mutex + condvar, signalled after unlocking.
#[repr(C)]
struct RawPthreadTurn {
    m: RawPthreadMutex,
    cv: RawPthreadCond,
    turn: std::cell::UnsafeCell<u32>,
}

// SAFETY: `turn` is only touched under `m`.
unsafe impl Sync for RawPthreadTurn {}

impl Turn for RawPthreadTurn {
    fn give(&self, to: u32) {
        self.m.lock();
        // SAFETY: `m` is held.
        unsafe { *self.turn.get() = to };
        self.m.unlock();
        self.cv.signal();
    }
    fn await_turn(&self, me: u32) {
        self.m.lock();
        // SAFETY: `m` is held.
        while unsafe { *self.turn.get() } != me {
            self.cv.wait(&self.m);
        }
        self.m.unlock();
    }
}

/// CPU time (user + system) used so far by this process and by its reaped children, in µs.
fn cpu_us() -> f64 {
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: `ru` is plain data that getrusage fills in.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut ru);
            ru
        };
        for tv in [ru.ru_utime, ru.ru_stime] {
            total += tv.tv_sec as f64 * 1e6 + tv.tv_usec as f64;
        }
    }
    total
}

/// Round trip time in µs for `rounds` exchanges, and the CPU time both sides spent per
/// round trip (which other load on the machine disturbs less); `cpus` = (parent cpu, child
/// cpu).
fn turn_rtt(t: &'static dyn Turn, rounds: u32, cpus: (usize, usize)) -> (f64, f64) {
    let cpu_before = cpu_us();
    pin_to(cpus.0);
    let child = fork(move || {
        pin_to(cpus.1);
        for _ in 0..rounds {
            t.await_turn(1);
            t.give(0);
        }
        0
    });
    let start = Instant::now();
    for _ in 0..rounds {
        t.give(1);
        t.await_turn(0);
    }
    let rtt = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    reap(child);
    unpin();
    (rtt, (cpu_us() - cpu_before) / f64::from(rounds))
}

/// Round trip time in µs over a pair of pipes.
fn pipe_rtt(rounds: u32, cpus: (usize, usize)) -> f64 {
    let mut a = [0; 2];
    let mut b = [0; 2];
    // SAFETY: two valid arrays of two fds.
    unsafe {
        assert_eq!(libc::pipe(a.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(b.as_mut_ptr()), 0);
    }
    pin_to(cpus.0);
    let child = fork(move || {
        pin_to(cpus.1);
        let mut byte = 0u8;
        for _ in 0..rounds {
            // SAFETY: reading/writing one byte through our own pipe fds.
            unsafe {
                libc::read(a[0], (&mut byte as *mut u8).cast(), 1);
                libc::write(b[1], (&byte as *const u8).cast(), 1);
            }
        }
        0
    });
    let start = Instant::now();
    let mut byte = 1u8;
    for _ in 0..rounds {
        // SAFETY: as above.
        unsafe {
            libc::write(a[1], (&byte as *const u8).cast(), 1);
            libc::read(b[0], (&mut byte as *mut u8).cast(), 1);
        }
    }
    let rtt = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    reap(child);
    unpin();
    for fd in a.into_iter().chain(b) {
        // SAFETY: closing our own fds.
        unsafe { libc::close(fd) };
    }
    rtt
}

/// One line per name: the median of its samples, in µs.
fn medians(names: &[&str], samples: &[Vec<f64>]) -> Vec<Line> {
    names
        .iter()
        .zip(samples)
        .map(|(name, s)| Line {
            name: name.to_string(),
            value: median(s),
            unit: "µs",
            extra: String::new(),
        })
        .collect()
}

pub fn run() {
    let futex: &'static FutexTurn = boxed(FutexTurn {
        turn: shmsync::futex::ShmMutex::new(0),
        changed: shmsync::futex::ShmCondvar::new(),
    });
    let pthread: &'static PthreadTurn = boxed(PthreadTurn {
        turn: shmsync::pthread::ShmMutex::new(0),
        changed: shmsync::pthread::ShmCondvar::new(),
    });
    let raw_futex: &'static RawFutexTurn = shared(|_| {});
    let raw_pthread: &'static RawPthreadTurn = shared(|p: *mut RawPthreadTurn| {
        // SAFETY: fresh zeroed shared memory; mutex and condvar set up in place.
        unsafe {
            RawPthreadMutex::init(std::ptr::addr_of_mut!((*p).m), false);
            RawPthreadCond::init(std::ptr::addr_of_mut!((*p).cv));
        }
    });
    let rows: [(&str, Option<&'static dyn Turn>); 5] = [
        ("futex ShmCondvar (default)", Some(futex)),
        ("pthread ShmCondvar", Some(pthread)),
        ("raw futex turn word", Some(raw_futex)),
        ("raw pthread mutex + cond", Some(raw_pthread)),
        ("pipe pair", None),
    ];
    for (label, cpus, rounds) in [
        ("both on one CPU", (0, 0), (20_000.0 * scale()) as u32),
        (
            "on two CPUs",
            (0, 1.min(crate::num_cpus() - 1)),
            (4_000.0 * scale()) as u32,
        ),
    ] {
        let mut samples = vec![Vec::new(); rows.len()];
        let mut cpu = vec![Vec::new(); rows.len()];
        for rep in 0..=REPS {
            for (i, (_, turn)) in rows.iter().enumerate() {
                let (rtt, used) = match turn {
                    Some(t) => turn_rtt(*t, rounds, cpus),
                    None => (pipe_rtt(rounds, cpus), f64::NAN),
                };
                if rep > 0 {
                    samples[i].push(rtt);
                    cpu[i].push(used);
                }
            }
        }
        let names: Vec<&str> = rows.iter().map(|(name, _)| *name).collect();
        let lines = medians(&names, &samples);
        // The pipe pair has no CPU figure.
        let cpu_lines = medians(&names[..names.len() - 1], &cpu);
        print_section(
            &format!("Condvar ping-pong round trip, {label}"),
            &lines,
            &[
                ("futex ShmCondvar (default)", "raw futex turn word"),
                ("pthread ShmCondvar", "raw futex turn word"),
                ("pthread ShmCondvar", "raw pthread mutex + cond"),
            ],
        );
        print_section(
            &format!("Condvar ping-pong, CPU time of both sides per round trip, {label}"),
            &cpu_lines,
            &[
                ("futex ShmCondvar (default)", "raw futex turn word"),
                ("pthread ShmCondvar", "raw futex turn word"),
                ("pthread ShmCondvar", "raw pthread mutex + cond"),
            ],
        );
    }
}
