//! Contended throughput: 2 and 8 forked processes hammering one lock over a fixed window.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::anchors::{shared, Counter, Counters};
use crate::{fork, median, print_section, reap, scale, sleep, Line, REPS};

const MAX_PROCS: usize = 8;

/// Start/stop flags and per-process operation counts, in shared memory.
#[repr(C)]
struct Control {
    go: AtomicU32,
    stop: AtomicU32,
    ops: [AtomicU64; MAX_PROCS],
}

/// One window: (Mops/s, lost updates, max/min ops per process).
fn window(
    counter: &'static dyn Counter,
    control: &'static Control,
    procs: usize,
    len: Duration,
) -> (f64, u64, f64) {
    control.go.store(0, Ordering::SeqCst);
    control.stop.store(0, Ordering::SeqCst);
    let before = counter.get();
    let pids: Vec<_> = (0..procs)
        .map(|i| {
            fork(move || {
                while control.go.load(Ordering::Acquire) == 0 {
                    std::hint::spin_loop();
                }
                let mut n = 0u64;
                while control.stop.load(Ordering::Relaxed) == 0 {
                    counter.incr();
                    n += 1;
                }
                control.ops[i].store(n, Ordering::Release);
                0
            })
        })
        .collect();
    let start = Instant::now();
    control.go.store(1, Ordering::Release);
    sleep(len);
    control.stop.store(1, Ordering::Relaxed);
    let elapsed = start.elapsed();
    pids.into_iter().for_each(reap);
    let per: Vec<u64> = (0..procs)
        .map(|i| control.ops[i].load(Ordering::Acquire))
        .collect();
    let total: u64 = per.iter().sum();
    let counted = counter.get() - before;
    let lost = total.abs_diff(counted);
    let max = *per.iter().max().unwrap() as f64;
    let min = (*per.iter().min().unwrap()).max(1) as f64;
    (total as f64 / elapsed.as_secs_f64() / 1e6, lost, max / min)
}

pub fn run() {
    let len = Duration::from_millis((200.0 * scale()) as u64);
    let c = Counters::new();
    let control = shared::<Control>(|_| {});
    let rows: [(&str, &'static dyn Counter); 4] = [
        ("futex ShmMutex", c.futex),
        ("pthread ShmMutex", c.pthread),
        ("raw futex word", c.raw_futex),
        ("raw robust pshared pthread", c.raw_robust),
    ];
    let mut by_procs = Vec::new();
    for procs in [2, 8] {
        let mut mops = vec![Vec::new(); rows.len()];
        let mut lost = vec![0u64; rows.len()];
        let mut fairness = vec![Vec::new(); rows.len()];
        for rep in 0..=REPS {
            for (i, (_, counter)) in rows.iter().enumerate() {
                let (m, l, f) = window(*counter, control, procs, len);
                if rep > 0 {
                    mops[i].push(m);
                    fairness[i].push(f);
                }
                lost[i] += l;
            }
        }
        let lines: Vec<Line> = rows
            .iter()
            .enumerate()
            .map(|(i, (name, _))| Line {
                name: name.to_string(),
                value: median(&mops[i]),
                unit: "Mops/s",
                extra: format!("lost {}, max/min {:.2}", lost[i], median(&fairness[i])),
            })
            .collect();
        print_section(
            &format!("Contended, {procs} processes on {} CPUs", crate::num_cpus()),
            &lines,
            &[
                ("futex ShmMutex", "raw futex word"),
                ("futex ShmMutex", "raw robust pshared pthread"),
                ("pthread ShmMutex", "raw robust pshared pthread"),
            ],
        );
        by_procs.push(lines.iter().map(|l| l.value).collect::<Vec<_>>());
    }
    println!("\n8-process / 2-process throughput:");
    for (i, (name, _)) in rows.iter().enumerate() {
        println!("- {name}: {:.2}×", by_procs[1][i] / by_procs[0][i]);
    }
}
