//! A 64 MiB pool of video frames in shared memory, made in place: a producer process fills
//! frames, a consumer process checks them, through a ring of frame indices under one
//! `ShmMutex` and two `ShmCondvar`s. The pool is far larger than a thread's stack, so it is
//! made with `ShmBox::new_zeroed` (never built on the stack, no page touched until used).
//!
//! ```text
//! cargo run --example frames -- --frames 200 --stride 64
//! ```
//!
//! Every frame arrives in order with its checksum intact; exits non-zero otherwise.

use std::process::ExitCode;
use std::time::Instant;

use shmsync::{ShmBox, ShmCondvar, ShmMutex, ShmSafe, ShmZeroable};

/// Bytes of pixels in one frame.
const FRAME_BYTES: usize = 4 << 20;
/// Frames in the pool.
const POOL: usize = 16;

#[derive(ShmSafe, ShmZeroable)]
#[repr(C)]
struct Frame {
    seq: u64,
    checksum: u64,
    pixels: [u8; FRAME_BYTES],
}

/// Frames `head..tail` (modulo the pool) are filled and not yet consumed.
#[derive(ShmSafe, ShmZeroable)]
#[repr(C)]
struct Ring {
    head: u64,
    tail: u64,
    bad: u64,
}

#[derive(ShmSafe, ShmZeroable)]
#[repr(C)]
struct Pool {
    ring: ShmMutex<Ring>,
    filled: ShmCondvar,
    freed: ShmCondvar,
    frames: [ShmMutex<Frame>; POOL],
}

#[path = "shared/children.rs"]
mod children;
#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: frames [--frames N] [--stride BYTES]

A pool of 16 frames of 4 MiB each (64 MiB) in anonymous shared memory, made in place with
ShmBox::new_zeroed: a producer process fills frames and a consumer process checks them,
passing frame indices through a ring under one ShmMutex and two ShmCondvars. Ends with OK
when every frame arrived in order with its checksum intact.

Options:
  --frames N          frames to pass through the pool (1..=100000, default 200)
  --stride BYTES      write and check one pixel every BYTES (1..=4096, default 64)
  -h, --help          print this help
";

struct Args {
    frames: u64,
    stride: usize,
}

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<Args>, cli::Error> {
    use cli::{Long, Short};
    let mut args = Args {
        frames: 200,
        stride: 64,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("frames") => args.frames = cli::number(parser, "--frames", 1..=100_000)?,
            Long("stride") => args.stride = cli::number(parser, "--stride", 1..=4096)?,
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(cli::Request::Run(args))
}

/// The pixel at `i` of frame `seq`, and the checksum of a frame's sampled pixels.
fn pixel(seq: u64, i: usize) -> u8 {
    (seq as usize).wrapping_mul(31).wrapping_add(i / 4096) as u8
}

fn checksum(frame: &Frame, stride: usize) -> u64 {
    let sampled = frame.pixels.iter().step_by(stride);
    sampled.fold(frame.seq, |sum, &p| {
        sum.wrapping_mul(1_000_003).wrapping_add(u64::from(p))
    })
}

/// Fills frames `0..frames` in turn, waiting for a free one each time.
fn produce(pool: &Pool, frames: u64, stride: usize) {
    for seq in 0..frames {
        let ring = pool.ring.lock().expect("not poisoned");
        let ring = pool
            .freed
            .wait_while(ring, |r| r.tail - r.head == POOL as u64)
            .expect("not poisoned");
        let slot = (ring.tail % POOL as u64) as usize;
        drop(ring);
        // The slot is free: no one else touches it until `tail` moves past it.
        let mut frame = pool.frames[slot].lock().expect("not poisoned");
        frame.seq = seq;
        for i in (0..FRAME_BYTES).step_by(stride) {
            frame.pixels[i] = pixel(seq, i);
        }
        frame.checksum = checksum(&frame, stride);
        drop(frame);
        pool.ring.lock().expect("not poisoned").tail += 1;
        pool.filled.notify_one();
    }
}

/// Checks frames `0..frames` in order, counting the bad ones in the ring.
fn consume(pool: &Pool, frames: u64, stride: usize) {
    for seq in 0..frames {
        let ring = pool.ring.lock().expect("not poisoned");
        let ring = pool
            .filled
            .wait_while(ring, |r| r.head == r.tail)
            .expect("not poisoned");
        let slot = (ring.head % POOL as u64) as usize;
        drop(ring);
        let frame = pool.frames[slot].lock().expect("not poisoned");
        let good = frame.seq == seq
            && frame.checksum == checksum(&frame, stride)
            && (0..FRAME_BYTES)
                .step_by(stride)
                .all(|i| frame.pixels[i] == pixel(seq, i));
        drop(frame);
        let mut ring = pool.ring.lock().expect("not poisoned");
        ring.bad += u64::from(!good);
        ring.head += 1;
        drop(ring);
        pool.freed.notify_one();
    }
}

fn main() -> ExitCode {
    let Args { frames, stride } = match cli::parse("frames", USAGE, parse_args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let started = Instant::now();
    let pool = ShmBox::<Pool>::new_zeroed().expect("anonymous shared memory");
    let made_in = started.elapsed();
    let mib = std::mem::size_of::<Pool>() >> 20;
    println!("a {mib} MiB pool of {POOL} frames made in place in {made_in:?}");

    let started = Instant::now();
    let pids = [
        children::fork(|| produce(&pool, frames, stride)),
        children::fork(|| consume(&pool, frames, stride)),
    ];
    let all_ok = children::reap_all(pids);
    let ring = pool.ring.lock().expect("not poisoned");
    let (passed, bad) = (ring.head, ring.bad);
    println!(
        "{passed} of {frames} frames of {} MiB passed in {:?}, {bad} bad",
        FRAME_BYTES >> 20,
        started.elapsed()
    );
    if all_ok && passed == frames && bad == 0 {
        println!("OK: {frames} frames passed through the pool in order, every checksum intact");
        ExitCode::SUCCESS
    } else if !all_ok {
        println!("FAILED: the producer or the consumer process failed");
        ExitCode::FAILURE
    } else {
        println!("FAILED: {passed} of {frames} frames arrived, {bad} of them bad");
        ExitCode::FAILURE
    }
}
