//! Many waiting processes: how long a `notify_all` to 8 of them takes until the last has held
//! the mutex (and how many context switches it costs), and how often 50 idle waiters wake up.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::anchors::{
    boxed, futex_wait, shared, RawFutexMutex, RawLock, RawPthreadCond, RawPthreadMutex,
};
use crate::{fork, median, print_section, reap, scale, sleep, Line, REPS};

/// The board under the lock: the round, how many went to sleep, how many arrived since the
/// round began, and when the last arrival held the lock (CLOCK_MONOTONIC ns).
#[derive(Clone, Copy, Default, shmsync::ShmSafe)]
#[repr(C)]
struct Counts {
    round: u64,
    asleep: u64,
    arrived: u64,
    last_ns: u64,
}

/// A mutex-protected [`Counts`] and a condvar its waiters sleep on.
trait Board: Sync + 'static {
    /// Runs `f` on the counts under the lock.
    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R;
    /// Counts itself asleep, sleeps until the round passes `seen`, counts itself arrived
    /// (stamping the time if it is the `n`th); returns the new round.
    fn wait_round(&self, seen: u64, n: u64) -> u64;
    /// Wakes every waiter.
    fn notify_all(&self);
    /// Wakes one waiter.
    fn notify_one(&self);
}

/// What a waiter does once it holds the lock again after the round moved.
fn arrive(c: &mut Counts, n: u64) -> u64 {
    c.arrived += 1;
    if c.arrived == n {
        c.last_ns = now_ns();
    }
    c.round
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

macro_rules! shmsync_board {
    ($name:ident, $backend:ident) => {
        #[derive(shmsync::ShmSafe)]
        #[repr(C)]
        struct $name {
            counts: shmsync::$backend::ShmMutex<Counts>,
            cv: shmsync::$backend::ShmCondvar,
        }
        impl $name {
            fn new() -> $name {
                $name {
                    counts: shmsync::$backend::ShmMutex::new(Counts::default()),
                    cv: shmsync::$backend::ShmCondvar::new(),
                }
            }
        }
        impl Board for $name {
            fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
                f(&mut self.counts.lock().unwrap())
            }
            fn wait_round(&self, seen: u64, n: u64) -> u64 {
                let mut g = self.counts.lock().unwrap();
                g.asleep += 1;
                let mut g = self.cv.wait_while(g, |c| c.round == seen).unwrap();
                arrive(&mut g, n)
            }
            fn notify_all(&self) {
                self.cv.notify_all();
            }
            fn notify_one(&self) {
                self.cv.notify_one();
            }
        }
    };
}

shmsync_board!(FutexBoard, futex);
shmsync_board!(PthreadBoard, pthread);

/// Runs `f` on `counts` under the raw lock `m` that guards them.
fn locked<R>(m: &impl RawLock, counts: &UnsafeCell<Counts>, f: impl FnOnce(&mut Counts) -> R) -> R {
    m.acquire();
    // SAFETY: `m`, which guards `counts`, is held.
    let r = f(unsafe { &mut *counts.get() });
    m.release();
    r
}

/// A pshared pthread mutex + condvar, as a C program would write it.
#[repr(C)]
struct RawPthreadBoard {
    m: RawPthreadMutex,
    cv: RawPthreadCond,
    counts: UnsafeCell<Counts>,
}

// SAFETY: `counts` is only touched under `m`.
unsafe impl Sync for RawPthreadBoard {}

impl Board for RawPthreadBoard {
    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        locked(&self.m, &self.counts, f)
    }
    fn wait_round(&self, seen: u64, n: u64) -> u64 {
        self.m.lock();
        // SAFETY: `m` is held here and after each return of `wait`; the counts are read
        // afresh each time, since other processes change them while `wait` sleeps.
        unsafe { (*self.counts.get()).asleep += 1 };
        // SAFETY: as above.
        while unsafe { (*self.counts.get()).round } == seen {
            self.cv.wait(&self.m);
        }
        // SAFETY: `m` is held.
        let round = arrive(unsafe { &mut *self.counts.get() }, n);
        self.m.unlock();
        round
    }
    fn notify_all(&self) {
        self.cv.broadcast();
    }
    fn notify_one(&self) {
        self.cv.signal();
    }
}

/// The textbook futex mutex with a sequence-counter condvar, whose `notify_all` either wakes
/// every waiter or wakes one and requeues the rest onto the mutex word (`FUTEX_CMP_REQUEUE`),
/// as glibc did before 2.25: what requeueing would buy, measured on bare words.
#[repr(C)]
struct RawFutexBoard {
    m: RawFutexMutex,
    seq: AtomicU32,
    requeue: bool,
    counts: UnsafeCell<Counts>,
}

// SAFETY: `counts` is only touched under `m`.
unsafe impl Sync for RawFutexBoard {}

impl Board for RawFutexBoard {
    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        locked(&self.m, &self.counts, f)
    }
    fn wait_round(&self, seen: u64, n: u64) -> u64 {
        self.m.lock();
        // SAFETY: `m` is held here and after each re-lock below.
        unsafe { (*self.counts.get()).asleep += 1 };
        // SAFETY: as above.
        while unsafe { (*self.counts.get()).round } == seen {
            let s = self.seq.load(Ordering::Relaxed);
            self.m.unlock();
            futex_wait(&self.seq, s);
            // Possibly moved onto the lock word: lock leaving "with waiters".
            self.m.lock_as_contended();
        }
        // SAFETY: `m` is held.
        let round = arrive(unsafe { &mut *self.counts.get() }, n);
        self.m.unlock();
        round
    }
    fn notify_all(&self) {
        let s = self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if !self.requeue {
            crate::anchors::futex_wake(&self.seq, i32::MAX);
            return;
        }
        self.m.mark_contended();
        // SAFETY: both words are live shared u32s; the kernel compares `seq` with `s` and
        // uses the addresses as keys.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.seq.as_ptr(),
                libc::FUTEX_CMP_REQUEUE,
                1,
                i32::MAX as usize,
                self.m.word().as_ptr(),
                s,
            )
        };
    }
    fn notify_one(&self) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        crate::anchors::futex_wake(&self.seq, 1);
    }
}

/// Context switches (voluntary + involuntary) of process `pid` so far.
fn switches(pid: libc::pid_t) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

fn total_switches(pids: &[libc::pid_t]) -> u64 {
    pids.iter().map(|&p| switches(p)).sum()
}

/// Forks `n` waiters that wait round after round until round `rounds`.
fn waiters<B: Board>(b: &'static B, n: u64, rounds: u64) -> Vec<libc::pid_t> {
    (0..n)
        .map(|_| {
            fork(move || {
                let mut seen = 0;
                while seen < rounds {
                    seen = b.wait_round(seen, n);
                }
                0
            })
        })
        .collect()
}

/// Waits until `n` waiters went to sleep `times` times in all, then a little longer for the
/// last of them to reach the kernel (a benchmark may use a wall-clock window).
fn until_asleep<B: Board>(b: &B, total: u64) {
    while b.with(|c| c.asleep) < total {
        sleep(Duration::from_millis(1));
    }
    sleep(Duration::from_millis(5));
}

/// One process's measurement of `rounds` `notify_all`s to `n` waiters: median µs until the
/// last one held the lock, and median context switches of the waiters per round.
fn broadcast_rounds<B: Board>(b: &'static B, n: u64, rounds: u64) -> (f64, f64) {
    b.with(|c| *c = Counts::default());
    let pids = waiters(b, n, rounds);
    let (mut latency, mut cost) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        until_asleep(b, n * (r + 1));
        let before = total_switches(&pids);
        let t0 = b.with(|c| {
            c.arrived = 0;
            c.round += 1;
            now_ns()
        });
        b.notify_all();
        while b.with(|c| c.arrived) < n {
            sleep(Duration::from_micros(200));
        }
        if r + 1 < rounds {
            until_asleep(b, n * (r + 2));
        }
        cost.push((total_switches(&pids) - before) as f64);
        latency.push((b.with(|c| c.last_ns) - t0) as f64 / 1e3);
    }
    pids.into_iter().for_each(reap);
    (median(&latency), median(&cost))
}

/// Context switches per waiter and second of `n` waiters over `window`, after `burst`
/// `notify_one`s that change nothing (and a pause of `settle`).
fn idle_switches<B: Board>(
    b: &'static B,
    n: u64,
    burst: u32,
    settle: Duration,
    window: Duration,
) -> f64 {
    b.with(|c| *c = Counts::default());
    let pids = waiters(b, n, 1);
    until_asleep(b, n);
    for _ in 0..burst {
        b.notify_one();
        sleep(Duration::from_micros(500));
    }
    sleep(settle);
    let before = total_switches(&pids);
    let start = Instant::now();
    sleep(window);
    let per = (total_switches(&pids) - before) as f64 / n as f64 / start.elapsed().as_secs_f64();
    b.with(|c| c.round = 1);
    b.notify_all();
    pids.into_iter().for_each(reap);
    per
}

fn raw_pthread_board() -> &'static RawPthreadBoard {
    shared(|p: *mut RawPthreadBoard| {
        // SAFETY: fresh zeroed shared memory; mutex and condvar set up in place.
        unsafe {
            RawPthreadMutex::init(std::ptr::addr_of_mut!((*p).m), false);
            RawPthreadCond::init(std::ptr::addr_of_mut!((*p).cv));
        }
    })
}

fn raw_futex_board(requeue: bool) -> &'static RawFutexBoard {
    shared(move |p: *mut RawFutexBoard| {
        // SAFETY: fresh zeroed shared memory: an unlocked lock and a zero counter.
        unsafe { std::ptr::addr_of_mut!((*p).requeue).write(requeue) };
    })
}

pub fn run() {
    let futex: &'static FutexBoard = boxed(FutexBoard::new());
    let pthread: &'static PthreadBoard = boxed(PthreadBoard::new());
    let raw_pthread = raw_pthread_board();
    let wake_all = raw_futex_board(false);
    let requeue = raw_futex_board(true);

    const N: u64 = 8;
    let rounds = (20.0 * scale()).max(3.0) as u64;
    let names = [
        "futex ShmCondvar (default)",
        "pthread ShmCondvar",
        "raw pthread mutex + cond (broadcast)",
        "raw futex mutex + seq, wake all",
        "raw futex mutex + seq, requeue onto the mutex",
    ];
    let mut latency = vec![Vec::new(); names.len()];
    let mut cost = vec![Vec::new(); names.len()];
    for rep in 0..=REPS {
        let results = [
            broadcast_rounds(futex, N, rounds),
            broadcast_rounds(pthread, N, rounds),
            broadcast_rounds(raw_pthread, N, rounds),
            broadcast_rounds(wake_all, N, rounds),
            broadcast_rounds(requeue, N, rounds),
        ];
        if rep > 0 {
            for (i, (l, c)) in results.into_iter().enumerate() {
                latency[i].push(l);
                cost[i].push(c);
            }
        }
    }
    let lines: Vec<Line> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Line {
            name: name.to_string(),
            value: median(&latency[i]),
            unit: "µs",
            extra: format!("{:.0} context switches", median(&cost[i])),
        })
        .collect();
    print_section(
        "notify_all to 8 waiting processes: until the last has held the mutex",
        &lines,
        &[
            (
                "futex ShmCondvar (default)",
                "raw pthread mutex + cond (broadcast)",
            ),
            ("pthread ShmCondvar", "raw pthread mutex + cond (broadcast)"),
            (
                "raw futex mutex + seq, requeue onto the mutex",
                "raw futex mutex + seq, wake all",
            ),
        ],
    );
    println!(
        "\n(context switches: all 8 waiters' voluntary + involuntary ones per round, each one's \
         return to sleep included)"
    );

    const IDLE: u64 = 50;
    let window = Duration::from_secs_f64((10.0 * scale()).max(1.0));
    let mut idle = Vec::new();
    for (name, burst, settle) in [
        ("nothing happens", 0, Duration::ZERO),
        ("2 s after 100 notify_one", 100, Duration::from_secs(2)),
    ] {
        idle.push(Line {
            name: format!("futex ShmCondvar, {name}"),
            value: idle_switches(futex, IDLE, burst, settle, window),
            unit: "/s",
            extra: String::new(),
        });
        idle.push(Line {
            name: format!("pthread ShmCondvar, {name}"),
            value: idle_switches(pthread, IDLE, burst, settle, window),
            unit: "/s",
            extra: String::new(),
        });
        idle.push(Line {
            name: format!("raw pthread mutex + cond, {name}"),
            value: idle_switches(raw_pthread, IDLE, burst, settle, window),
            unit: "/s",
            extra: String::new(),
        });
    }
    print_section(
        &format!(
            "Idle waiters: context switches per waiter and second, {IDLE} waiters over {:.0} s",
            window.as_secs_f64()
        ),
        &idle,
        &[],
    );
}
