//! Segments that are garbage, truncated, zero-filled or mutated never open: `open` fails with
//! `InvalidData` (or `TimedOut` for a live creator that holds its lock), never panics, never
//! hangs, and never writes to the segment.

mod common;
mod region_util;

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use common::Rng;
use region_util::{Unlink, HEADER_SIZE, INITIALIZING, STATE_OFFSET, TOKEN_MASK};
use shmsync::ShmOptions;

/// The value every template segment holds.
const VALUE: u64 = 0x1122_3344_5566_7788;

/// Writes `bytes` as the segment `name`, opens it as an `AtomicU64`, and checks that it
/// failed with an allowed kind (or succeeded only for `ok_allowed`) and left the bytes alone.
fn open_raw(name: &str, bytes: &[u8], opts: &ShmOptions) -> std::io::Result<u64> {
    region_util::write_raw_segment(name, bytes).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        opts.open::<AtomicU64>(name).map(|b| b.load(SeqCst))
    }))
    .unwrap_or_else(|_| panic!("open panicked on {bytes:02x?}"));
    assert_eq!(
        region_util::read_segment(name),
        bytes,
        "open changed the segment's bytes"
    );
    result
}

fn assert_invalid_data(result: std::io::Result<u64>, needle: &str) {
    match result {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
            assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
        }
        Ok(v) => panic!("opened, holding {v:#x}"),
    }
}

#[test]
fn zero_filled_and_empty_segments_are_not_initialised() {
    let opts = ShmOptions::new();
    for len in [136, 4096] {
        let seg = Unlink::new("zeros");
        assert_invalid_data(
            open_raw(seg.name(), &vec![0; len], &opts),
            "not initialised",
        );
    }
    let seg = Unlink::new("empty");
    assert_invalid_data(open_raw(seg.name(), &[], &opts), "too small");
}

#[test]
fn truncated_segments_are_refused() {
    let template = region_util::valid_segment_bytes(AtomicU64::new(VALUE));
    assert_eq!(template.len(), 136);
    let opts = ShmOptions::new();
    for len in [1, 8, 17, 63] {
        let seg = Unlink::new("short");
        assert_invalid_data(open_raw(seg.name(), &template[..len], &opts), "too small");
    }
    for len in [128, 129, 135] {
        let seg = Unlink::new("truncated");
        assert_invalid_data(open_raw(seg.name(), &template[..len], &opts), "truncated");
    }
    // Longer than needed is fine: the header decides where the value is.
    let mut longer = template.clone();
    longer.resize(4096, 0xee);
    let seg = Unlink::new("longer");
    assert_eq!(open_raw(seg.name(), &longer, &opts).unwrap(), VALUE);
}

#[test]
fn foreign_contents_are_not_shmsync_segments() {
    let opts = ShmOptions::new();
    let text = b"#!/bin/sh\necho this is not a shared memory segment at all, really not\n\
                 echo and it is long enough to hold a segment header, which it is not, truly\n";
    let seg = Unlink::new("text");
    assert_invalid_data(open_raw(seg.name(), text, &opts), "not a shmsync segment");
    let mut rng = Rng::new(7);
    let noise: Vec<u8> = (0..4096).map(|_| rng.byte()).collect();
    let seg = Unlink::new("noise");
    assert_invalid_data(open_raw(seg.name(), &noise, &opts), "not a shmsync segment");
    // A READY state word alone does not make a segment.
    let mut ready_only = vec![0u8; 136];
    region_util::set_state(&mut ready_only, 1);
    let seg = Unlink::new("ready-only");
    assert_invalid_data(
        open_raw(seg.name(), &ready_only, &opts),
        "not a shmsync segment",
    );
}

#[test]
fn invalid_state_words_are_refused() {
    let template = region_util::valid_segment_bytes(AtomicU64::new(VALUE));
    let opts = ShmOptions::new().init_timeout(Duration::from_secs(60));
    // INITIALIZING without a token names nobody: no creator ever writes it.
    for state in [
        2,
        3,
        0x7fff_ffff,
        INITIALIZING,
        INITIALIZING | (TOKEN_MASK + 1),
        u32::MAX,
    ] {
        let mut bytes = template.clone();
        region_util::set_state(&mut bytes, state);
        let seg = Unlink::new("state");
        assert_invalid_data(open_raw(seg.name(), &bytes, &opts), "state");
    }
}

/// Offset of the creator's liveness registry (device and inode) in the header.
const REGISTRY: std::ops::Range<usize> = 64..80;
/// Offset of the type name in the header: for messages only.
const TYPE_NAME: std::ops::Range<usize> = 80..HEADER_SIZE;

/// Whether `header` is the template's header, up to the creator pid, which any process may
/// have been, and the type name, which only messages use.
fn is_valid_header(header: &[u8], template: &[u8]) -> bool {
    let creator = u32::from_ne_bytes(header[20..24].try_into().unwrap());
    header[..20] == template[..20]
        && header[24..TYPE_NAME.start] == template[24..TYPE_NAME.start]
        && creator != 0
}

/// One fuzz case: random bytes, random bytes behind a valid magic, or the template with a
/// few header bytes changed; then a random length (truncated, exact or longer).
fn fuzz_case(rng: &mut Rng, template: &[u8]) -> Vec<u8> {
    let mut bytes = match rng.below(4) {
        0 => (0..rng.below(200)).map(|_| rng.byte()).collect(),
        1 => {
            let mut b: Vec<u8> = (0..136).map(|_| rng.byte()).collect();
            b[..8].copy_from_slice(&template[..8]);
            b
        }
        _ => {
            let mut b = template.to_vec();
            for _ in 0..=rng.below(3) {
                let at = rng.below(HEADER_SIZE);
                b[at] = match rng.below(3) {
                    0 => b[at] ^ (1 << rng.below(8)),
                    1 => rng.byte(),
                    _ => [0x00, 0xff, 0x80, 0x01][rng.below(4)],
                };
            }
            b
        }
    };
    match rng.below(6) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 => bytes.resize(bytes.len() + rng.below(100), rng.byte()),
        _ => {}
    }
    bytes
}

#[test]
fn ten_thousand_random_and_mutated_headers_never_open_wrongly() {
    let template = region_util::valid_segment_bytes(AtomicU64::new(VALUE));
    let opts = ShmOptions::new().init_timeout(Duration::from_millis(5));
    let seed = std::env::var("SHMSYNC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0001);
    let mut rng = Rng::new(seed);
    let (mut opened, mut timed_out) = (0, 0);
    for case in 0..10_000 {
        let bytes = fuzz_case(&mut rng, &template);
        let seg = Unlink::new("fuzz");
        let valid = bytes.len() >= template.len() && is_valid_header(&bytes, &template);
        let ran = std::cell::Cell::new(false);
        let result = if case % 2 == 0 {
            open_raw(seg.name(), &bytes, &opts)
        } else {
            // open_or_create must treat the existing name the same way and never run init.
            region_util::write_raw_segment(seg.name(), &bytes).unwrap();
            let r = catch_unwind(AssertUnwindSafe(|| {
                opts.open_or_create(seg.name(), || {
                    ran.set(true);
                    AtomicU64::new(0)
                })
                .map(|b| b.load(SeqCst))
            }))
            .unwrap_or_else(|_| panic!("seed {seed} case {case}: panicked"));
            assert_eq!(region_util::read_segment(seg.name()), bytes);
            r
        };
        assert!(!ran.get(), "seed {seed} case {case}: init ran");
        match result {
            Ok(v) => {
                assert!(valid, "seed {seed} case {case}: opened {bytes:02x?}");
                assert_eq!(v, VALUE);
                opened += 1;
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                let state = region_util::state(&bytes);
                assert!(state & INITIALIZING != 0, "seed {seed} case {case}: {e}");
                timed_out += 1;
            }
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                // Another registry than this process's: refused, whatever else is valid.
                assert!(
                    bytes.len() >= REGISTRY.end && bytes[REGISTRY] != template[REGISTRY],
                    "seed {seed} case {case}: {e}"
                );
            }
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::InvalidData,
                    "seed {seed} case {case}: {e}"
                );
                assert!(
                    !valid,
                    "seed {seed} case {case}: refused a valid header: {e}"
                );
            }
        }
    }
    println!("fuzz seed {seed:#x}: {opened} opened, {timed_out} timed out");
}

#[test]
fn initialising_state_of_a_live_process_times_out_quickly() {
    let mut bytes = region_util::valid_segment_bytes(AtomicU64::new(VALUE));
    // This test process is alive, so it "is still initialising" the segment.
    region_util::set_state(&mut bytes, INITIALIZING | region_util::my_token());
    assert_eq!(region_util::state(&bytes) >> 31, 1);
    assert_eq!(
        &bytes[STATE_OFFSET..STATE_OFFSET + 4],
        &(INITIALIZING | region_util::my_token()).to_ne_bytes()
    );
    let seg = Unlink::new("live");
    region_util::write_raw_segment(seg.name(), &bytes).unwrap();
    let opts = ShmOptions::new().init_timeout(Duration::from_millis(20));
    // A live creator also holds its lock until READY; without it the state means "gave up".
    let err = opts.open::<AtomicU64>(seg.name()).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("gave up"), "{err}");
    let lock = region_util::hold_creator_lock(seg.name());
    let err = opts.open::<AtomicU64>(seg.name()).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    drop(lock);
    assert_eq!(region_util::read_segment(seg.name()), bytes);
}
