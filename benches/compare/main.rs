//! shmsync against the anchors, side by side in one run: `cargo bench --bench compare`.
//!
//! Every figure is the median of `REPS` interleaved repetitions (each repetition measures every
//! row once, in turn) after a warm-up; each shmsync row is followed by its ratio to the anchor
//! of the same kind. `REPS` and the sizes can be scaled with `SHMSYNC_BENCH_SCALE` (default 1).

mod anchors;
mod barrier;
mod big;
mod broadcast;
mod contended;
mod death;
mod pingpong;
mod semaphore;
mod uncontended;

use std::time::Duration;

/// Interleaved repetitions per figure.
pub const REPS: usize = 7;

/// A multiplier for the amount of work per repetition (`SHMSYNC_BENCH_SCALE`, default 1).
pub fn scale() -> f64 {
    std::env::var("SHMSYNC_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// The median of some samples.
pub fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `rep` (one measurement of every row, in turn) once to warm up and `REPS` times more,
/// and gives each row of `names` its median, in `unit`.
pub fn interleaved(
    names: &[&str],
    unit: &'static str,
    mut rep: impl FnMut() -> Vec<f64>,
) -> Vec<Line> {
    let mut samples = vec![Vec::new(); names.len()];
    let _warm_up = rep();
    for _ in 0..REPS {
        for (s, r) in samples.iter_mut().zip(rep()) {
            s.push(r);
        }
    }
    names
        .iter()
        .zip(&samples)
        .map(|(name, s)| Line {
            name: name.to_string(),
            value: median(s),
            unit,
            extra: String::new(),
        })
        .collect()
}

/// A percentile (0..=100) of some samples, nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// One printed line: a name, a median, and optionally its ratio to another row.
pub struct Line {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub extra: String,
}

/// Prints a section as a markdown table; `ratios` lists (row, anchor row) pairs by name.
pub fn print_section(title: &str, lines: &[Line], ratios: &[(&str, &str)]) {
    println!("\n### {title}\n");
    println!("| row | median | ratio |");
    println!("| --- | ---: | --- |");
    for line in lines {
        let mut ratio_text = Vec::new();
        for (row, anchor) in ratios.iter().filter(|(row, _)| *row == line.name) {
            let a = lines
                .iter()
                .find(|l| l.name == *anchor)
                .expect("anchor row");
            ratio_text.push(format!("{:.2}× {}", line.value / a.value, anchor));
            let _ = row;
        }
        println!(
            "| {}{} | {:.2} {} | {} |",
            line.name,
            if line.extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", line.extra)
            },
            line.value,
            line.unit,
            ratio_text.join(", ")
        );
    }
}

/// Pins the calling thread (and children forked later) to `cpu`.
pub fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes within it; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Lets the calling thread run on every CPU again.
pub fn unpin() {
    // SAFETY: as for `pin_to`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..num_cpus() {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Online CPUs.
pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Forks a child that runs `body` and `_exit`s with its result.
pub fn fork(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child runs `body` and `_exit`s without returning into main.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = body();
        // SAFETY: ends the child immediately.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Reaps `pid` and asserts it exited with 0.
pub fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "benchmark child {pid} failed: status {status:#x}"
    );
}

/// Sleeps; benchmarks (unlike tests) may use wall-clock windows.
pub fn sleep(d: Duration) {
    std::thread::sleep(d);
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects sections by substring.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants =
        |section: &str| filter.is_empty() || filter.iter().any(|f| section.contains(f.as_str()));
    println!("# shmsync compare — medians of {REPS} interleaved repetitions");
    println!(
        "machine: {} CPUs, {}",
        num_cpus(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    if wants("uncontended") {
        uncontended::run();
    }
    if wants("semaphore") {
        semaphore::run();
    }
    if wants("contended") {
        contended::run();
    }
    if wants("pingpong") {
        pingpong::run();
    }
    if wants("broadcast") || wants("idle") {
        broadcast::run();
    }
    if wants("death") {
        death::run();
    }
    if wants("barrier") {
        barrier::run();
    }
    if wants("big") {
        big::run();
    }
    if wants("footprint") {
        footprint();
    }
}

fn footprint() {
    use std::mem::size_of;
    println!("\n### Footprint (bytes)\n");
    println!("| type | size |");
    println!("| --- | ---: |");
    println!(
        "| futex `ShmMutex<()>` | {} |",
        size_of::<shmsync::futex::ShmMutex<()>>()
    );
    println!(
        "| pthread `ShmMutex<()>` | {} |",
        size_of::<shmsync::pthread::ShmMutex<()>>()
    );
    println!(
        "| `pthread_mutex_t` | {} |",
        size_of::<libc::pthread_mutex_t>()
    );
    println!(
        "| futex `ShmCondvar` | {} |",
        size_of::<shmsync::futex::ShmCondvar>()
    );
    println!(
        "| pthread `ShmCondvar` | {} |",
        size_of::<shmsync::pthread::ShmCondvar>()
    );
    println!(
        "| `pthread_cond_t` | {} |",
        size_of::<libc::pthread_cond_t>()
    );
}
