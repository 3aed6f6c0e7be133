//! Uncontended lock + counter increment + unlock, ns/op, in one process.

use std::hint::black_box;
use std::time::Instant;

use crate::anchors::{Counter, Counters};
use crate::{interleaved, print_section, scale};

pub fn ns_per_op(iters: u64, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

pub fn run() {
    let iters = (2_000_000.0 * scale()) as u64;
    let c = Counters::new();
    let std_mutex = std::sync::Mutex::new(0u64);
    let pl_mutex = parking_lot::Mutex::new(0u64);

    let names = [
        "futex ShmMutex",
        "pthread ShmMutex",
        "raw futex word",
        "raw robust pshared pthread",
        "std::sync::Mutex",
        "parking_lot::Mutex",
    ];
    let lines = interleaved(&names, "ns/op", || {
        vec![
            ns_per_op(iters, || black_box(c.futex).incr()),
            ns_per_op(iters, || black_box(c.pthread).incr()),
            ns_per_op(iters, || black_box(c.raw_futex).incr()),
            ns_per_op(iters, || black_box(c.raw_robust).incr()),
            ns_per_op(iters, || *black_box(&std_mutex).lock().unwrap() += 1),
            ns_per_op(iters, || *black_box(&pl_mutex).lock() += 1),
        ]
    });
    print_section(
        "Uncontended lock + increment + unlock",
        &lines,
        &[
            ("futex ShmMutex", "raw futex word"),
            ("futex ShmMutex", "raw robust pshared pthread"),
            ("pthread ShmMutex", "raw robust pshared pthread"),
        ],
    );
}
