//! A bounded ring buffer in shared memory: several producer and consumer processes, one
//! `ShmMutex` and two `ShmCondvar`s (not full, not empty).
//!
//! ```text
//! cargo run --release --example ring -- --producers 3 --consumers 2 --items 20000
//! ```
//!
//! Every item is consumed exactly once; exits non-zero otherwise.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use shmsync::{ShmBox, ShmCondvar, ShmMutex, ShmSafe};

const CAPACITY: usize = 16;

#[derive(ShmSafe)]
#[repr(C)]
struct RingState {
    slots: [u64; CAPACITY],
    head: u64,
    tail: u64,
    producers_left: u32,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Ring {
    state: ShmMutex<RingState>,
    not_empty: ShmCondvar,
    not_full: ShmCondvar,
    consumed: AtomicU64,
    sum: AtomicU64,
}

#[path = "shared/children.rs"]
mod children;
#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: ring [--producers N] [--consumers N] [--items N]

A bounded ring buffer (16 slots) in anonymous shared memory: producer processes push numbered
items, consumer processes pop them, under one ShmMutex and two ShmCondvars (not full, not
empty). Ends with OK when every item was consumed exactly once.

Options:
  --producers N       producer processes (1..=64, default 3)
  --consumers N       consumer processes (1..=64, default 2)
  --items N           items each producer pushes (1..=10000000, default 20000)
  -h, --help          print this help
";

struct Args {
    producers: u64,
    consumers: u64,
    items: u64,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Args>, cli::Error> {
    use cli::{Long, Short};
    let mut args = Args {
        producers: 3,
        consumers: 2,
        items: 20_000,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("producers") => args.producers = cli::number(parser, "--producers", 1..=64)?,
            Long("consumers") => args.consumers = cli::number(parser, "--consumers", 1..=64)?,
            Long("items") => args.items = cli::number(parser, "--items", 1..=10_000_000)?,
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(cli::Request::Run(args))
}

/// Pushes `item`, waiting while the ring is full.
fn push(ring: &Ring, item: u64) {
    let state = ring.state.lock().expect("not poisoned");
    let mut state = ring
        .not_full
        .wait_while(state, |s| s.tail - s.head == CAPACITY as u64)
        .expect("not poisoned");
    let slot = (state.tail % CAPACITY as u64) as usize;
    state.slots[slot] = item;
    state.tail += 1;
    drop(state);
    ring.not_empty.notify_one();
}

/// Pops an item, waiting while the ring is empty; `None` once it is empty and every producer
/// has finished.
fn pop(ring: &Ring) -> Option<u64> {
    let state = ring.state.lock().expect("not poisoned");
    let mut state = ring
        .not_empty
        .wait_while(state, |s| s.head == s.tail && s.producers_left > 0)
        .expect("not poisoned");
    if state.head == state.tail {
        return None;
    }
    let item = state.slots[(state.head % CAPACITY as u64) as usize];
    state.head += 1;
    drop(state);
    ring.not_full.notify_one();
    Some(item)
}

fn main() -> ExitCode {
    let Args {
        producers,
        consumers,
        items,
    } = match cli::parse("ring", USAGE, parse_args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let ring = ShmBox::new(Ring {
        state: ShmMutex::new(RingState {
            slots: [0; CAPACITY],
            head: 0,
            tail: 0,
            producers_left: producers as u32,
        }),
        not_empty: ShmCondvar::new(),
        not_full: ShmCondvar::new(),
        consumed: AtomicU64::new(0),
        sum: AtomicU64::new(0),
    })
    .expect("anonymous shared memory");

    let mut pids = Vec::new();
    for p in 0..producers {
        pids.push(children::fork(|| {
            for i in 0..items {
                push(&ring, p * items + i + 1);
            }
            ring.state.lock().expect("not poisoned").producers_left -= 1;
            ring.not_empty.notify_all();
        }));
    }
    for _ in 0..consumers {
        pids.push(children::fork(|| {
            while let Some(item) = pop(&ring) {
                ring.consumed.fetch_add(1, Ordering::Relaxed);
                ring.sum.fetch_add(item, Ordering::Relaxed);
            }
        }));
    }
    let all_ok = children::reap_all(pids);
    let n = producers * items;
    let expected_sum = n * (n + 1) / 2;
    let consumed = ring.consumed.load(Ordering::Relaxed);
    let sum = ring.sum.load(Ordering::Relaxed);
    println!("{producers} producers x {items} items, {consumers} consumers, capacity {CAPACITY}");
    println!("consumed {consumed} of {n}; checksum {sum} (expected {expected_sum})");
    if all_ok && consumed == n && sum == expected_sum {
        println!("OK: {n} items passed through the ring, each consumed exactly once");
        ExitCode::SUCCESS
    } else if !all_ok {
        println!("FAILED: a producer or consumer process failed");
        ExitCode::FAILURE
    } else {
        println!(
            "FAILED: consumed {consumed} of {n} items, checksum {sum} (expected {expected_sum})"
        );
        ExitCode::FAILURE
    }
}
