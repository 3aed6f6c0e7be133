//! Creators that die, stall or panic at each step of making a named segment: between sizing
//! it and writing its header (POSIX after `ftruncate`, System V after `shmget`), and inside
//! the init closure of `open_or_create`.

mod common;
mod region_util;

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::Duration;

use region_util::{ftok_key, RmKey, Unlink};
use shmsync::{ShmBox, ShmOptions, SysvKey};

/// How long a child waits for the parent's go-ahead before it gives up.
const STEP: Duration = Duration::from_secs(30);
/// How long an opener must keep waiting for a paused creator: well past the old 200 ms grace
/// after which an all-zero segment used to be called "not initialised".
const PAUSE: Duration = Duration::from_millis(600);
/// The value hand-made creators publish.
const VALUE: u64 = 0x0123_4567_89ab_cdef;
/// Control slots shared with a forked creator.
const CREATED: usize = 0;
const GO: usize = 1;
const ID: usize = 2;

/// Options that would wait a long time for a live creator: a dead one must be reported at
/// once, not after this timeout.
fn patient() -> ShmOptions {
    ShmOptions::new().init_timeout(Duration::from_secs(60))
}

fn control() -> ShmBox<[AtomicU64; 3]> {
    ShmBox::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]).unwrap()
}

fn assert_not_initialised_by_a_dead_creator(err: std::io::Error) {
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("not initialised"), "{err}");
    assert!(err.to_string().contains("died"), "{err}");
}

/// Runs `open` in a thread; checks that it is still waiting after `PAUSE`, then lets the
/// creator finish with `go()` and returns what `open` gave.
fn open_across_a_pause<R: Send + 'static>(
    open: impl FnOnce() -> R + Send + 'static,
    go: impl FnOnce(),
) -> R {
    let (tx, rx) = mpsc::channel();
    let opener = std::thread::spawn(move || tx.send(open()).unwrap());
    assert!(
        rx.recv_timeout(PAUSE).is_err(),
        "the opener gave up on a creator that is alive and paused"
    );
    go();
    let result = rx.recv_timeout(STEP).expect("the opener finished");
    opener.join().unwrap();
    result
}

/// Forks a POSIX creator that does what shmsync's creator does up to sizing the segment to
/// `len` bytes, says so, and then waits to be told to publish `VALUE` (or to be killed).
fn posix_creator_paused_at(name: &str, len: u64, ctl: &ShmBox<[AtomicU64; 3]>) -> common::Child {
    let header = region_util::valid_segment_bytes(AtomicU64::new(0));
    // Fork: the child creates, locks and sizes the segment, then waits for the go-ahead.
    let child = common::fork(|| {
        let Ok(file) = region_util::create_locked(name, len) else {
            return 1;
        };
        ctl[CREATED].store(1, SeqCst);
        if !common::wait_until(STEP, || ctl[GO].load(SeqCst) == 1) {
            return 2;
        }
        if file.set_len(header.len() as u64).is_err() {
            return 3;
        }
        region_util::publish_posix_by_hand(name, &header, VALUE);
        0
    });
    assert!(common::wait_until(STEP, || ctl[CREATED].load(SeqCst) == 1));
    child
}

#[test]
fn posix_creator_killed_between_sizing_and_header_is_reported_at_once() {
    let ctl = control();
    let seg = Unlink::new("killed-sized");
    let child = posix_creator_paused_at(seg.name(), 136, &ctl);
    assert_eq!(child.kill(), common::Exit::Signal(libc::SIGKILL));
    let before = region_util::read_segment(seg.name());
    assert_eq!(before, vec![0; 136]);

    assert_not_initialised_by_a_dead_creator(patient().open::<AtomicU64>(seg.name()).unwrap_err());
    let ran = std::cell::Cell::new(false);
    let err = patient()
        .open_or_create(seg.name(), || {
            ran.set(true);
            AtomicU64::new(1)
        })
        .unwrap_err();
    assert_not_initialised_by_a_dead_creator(err);
    assert!(!ran.get(), "init must not run over a segment that exists");
    assert_eq!(region_util::read_segment(seg.name()), before, "open wrote");

    // The error says what to do; after that the name is created afresh.
    ShmBox::<AtomicU64>::unlink(seg.name()).unwrap();
    let fresh = patient()
        .open_or_create(seg.name(), || AtomicU64::new(5))
        .unwrap();
    assert_eq!(fresh.load(SeqCst), 5);
}

#[test]
fn posix_creator_dead_but_not_reaped_after_sizing_is_reported_at_once() {
    let ctl = control();
    let seg = Unlink::new("zombie-sized");
    let mut child = posix_creator_paused_at(seg.name(), 136, &ctl);
    child.signal(libc::SIGKILL);
    assert!(child.wait_exited(STEP));
    assert_not_initialised_by_a_dead_creator(patient().open::<AtomicU64>(seg.name()).unwrap_err());
    assert_eq!(child.wait(), common::Exit::Signal(libc::SIGKILL));
}

#[test]
fn posix_creator_paused_after_sizing_is_waited_for() {
    let ctl = control();
    let seg = Unlink::new("paused-sized");
    let child = posix_creator_paused_at(seg.name(), 136, &ctl);
    let name = seg.name().to_string();
    let opened = open_across_a_pause(
        move || patient().open::<AtomicU64>(&name).map(|b| b.load(SeqCst)),
        || ctl[GO].store(1, SeqCst),
    );
    assert_eq!(opened.unwrap(), VALUE);
    child.join();
}

#[test]
fn posix_creator_paused_before_sizing_is_waited_for() {
    let ctl = control();
    let seg = Unlink::new("paused-unsized");
    let child = posix_creator_paused_at(seg.name(), 0, &ctl);
    let name = seg.name().to_string();
    let opened = open_across_a_pause(
        move || {
            patient()
                .open_or_create(&name, || AtomicU64::new(1))
                .map(|b| b.load(SeqCst))
        },
        || ctl[GO].store(1, SeqCst),
    );
    assert_eq!(opened.unwrap(), VALUE);
    child.join();
}

#[test]
fn posix_creator_holds_its_lock_until_the_value_is_ready_even_if_it_forks() {
    let seg = Unlink::new("lock-held");
    let ctl = control();
    let mut child = None;
    let boxed = ShmBox::open_or_create(seg.name(), || {
        assert!(region_util::creator_lock_held(seg.name()));
        // Fork: the child inherits the creator's descriptor and lives on until released.
        child = Some(common::fork(|| {
            i32::from(!common::wait_until(STEP, || ctl[GO].load(SeqCst) == 1))
        }));
        AtomicU64::new(3)
    })
    .unwrap();
    assert!(
        !region_util::creator_lock_held(seg.name()),
        "the lock outlived READY in a forked child"
    );
    assert_eq!(boxed.load(SeqCst), 3);
    ctl[GO].store(1, SeqCst);
    child.unwrap().join();
}

/// Forks a System V creator that only `shmget`s the segment for `key` (zero-filled), says
/// so, and then waits to be told to publish `VALUE` (or to be killed).
fn sysv_creator_paused_after_shmget(key: i32, ctl: &ShmBox<[AtomicU64; 3]>) -> common::Child {
    let header = region_util::valid_segment_bytes(AtomicU64::new(0));
    // Fork: the child creates the segment, then waits for the go-ahead.
    let child = common::fork(|| {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
        // SAFETY: shmget only reads its integer arguments.
        let id = unsafe { libc::shmget(key, header.len(), flags) };
        if id < 0 {
            return 1;
        }
        ctl[ID].store(id as u64, SeqCst);
        ctl[CREATED].store(1, SeqCst);
        if !common::wait_until(STEP, || ctl[GO].load(SeqCst) == 1) {
            return 2;
        }
        region_util::publish_sysv_by_hand(id, &header, VALUE);
        0
    });
    assert!(common::wait_until(STEP, || ctl[CREATED].load(SeqCst) == 1));
    child
}

#[test]
fn sysv_creator_killed_between_shmget_and_header_is_reported_at_once() {
    let ctl = control();
    let (_file, key) = ftok_key("sysv-killed", b'K');
    let _rm = RmKey(key);
    let mut child = sysv_creator_paused_after_shmget(key, &ctl);
    // Dead but not reaped yet, then reaped: both count as dead.
    child.signal(libc::SIGKILL);
    assert!(child.wait_exited(STEP));
    let key = SysvKey::Key(key);
    assert_not_initialised_by_a_dead_creator(patient().sysv_open::<AtomicU64>(key).unwrap_err());
    assert_eq!(child.wait(), common::Exit::Signal(libc::SIGKILL));
    let ran = std::cell::Cell::new(false);
    let err = patient()
        .sysv_open_or_create(key, || {
            ran.set(true);
            AtomicU64::new(1)
        })
        .unwrap_err();
    assert_not_initialised_by_a_dead_creator(err);
    assert!(!ran.get(), "init must not run over a segment that exists");
}

#[test]
fn sysv_creator_paused_after_shmget_is_waited_for() {
    let ctl = control();
    let (_file, key) = ftok_key("sysv-paused", b'P');
    let _rm = RmKey(key);
    let child = sysv_creator_paused_after_shmget(key, &ctl);
    let opened = open_across_a_pause(
        move || {
            patient()
                .sysv_open::<AtomicU64>(SysvKey::Key(key))
                .map(|b| b.load(SeqCst))
        },
        || ctl[GO].store(1, SeqCst),
    );
    assert_eq!(opened.unwrap(), VALUE);
    child.join();
}

/// Runs `open_or_create(init)` where `init` first starts `racers` (which open the same
/// segment), waits until `racing()` says they are waiting on it, and then panics. Returns
/// what the racers got.
fn panic_in_init_while_racers_wait<B>(
    open_or_create: impl FnOnce(Box<dyn FnOnce() -> AtomicU64 + '_>) -> std::io::Result<B>,
    racers: Vec<Box<dyn FnOnce() -> std::io::Result<u64> + Send>>,
    racing: impl Fn() -> bool,
) -> Vec<std::io::Result<u64>> {
    let mut handles = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        open_or_create(Box::new(|| {
            handles = racers.into_iter().map(std::thread::spawn).collect();
            assert!(common::wait_until(STEP, &racing), "racers never opened");
            panic!("init fails on purpose");
        }))
    }));
    assert!(result.is_err(), "the panic of init goes on to the caller");
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Options for racers: long enough to outlast the panicking creator many times over, short
/// enough that a racer left waiting on a wreck fails the test in reasonable time.
fn racer_opts() -> ShmOptions {
    ShmOptions::new().init_timeout(Duration::from_secs(10))
}

#[test]
fn posix_init_that_panics_removes_the_name_and_racers_retry() {
    let seg = Unlink::new("init-panics");
    let result = catch_unwind(AssertUnwindSafe(|| {
        ShmBox::open_or_create(seg.name(), || -> AtomicU64 {
            panic!("init fails on purpose")
        })
    }));
    assert!(result.is_err());
    assert!(
        !seg.path().exists(),
        "the half-made segment was left behind"
    );
    let err = ShmBox::<AtomicU64>::open(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // Racers that already hold the half-made segment: a plain open finds it gone, an
    // open_or_create starts again and creates the name itself.
    let (a, b) = (seg.name().to_string(), seg.name().to_string());
    let results = panic_in_init_while_racers_wait(
        |init| ShmBox::open_or_create(seg.name(), init),
        vec![
            Box::new(move || racer_opts().open::<AtomicU64>(&a).map(|b| b.load(SeqCst))),
            Box::new(move || {
                racer_opts()
                    .open_or_create(&b, || AtomicU64::new(99))
                    .map(|b| b.load(SeqCst))
            }),
        ],
        || region_util::open_descriptors(seg.name()) >= 3,
    );
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(*results[1].as_ref().unwrap(), 99);
    let opened = ShmBox::<AtomicU64>::open(seg.name()).unwrap();
    assert_eq!(opened.load(SeqCst), 99);
}

#[test]
fn sysv_init_that_panics_removes_the_segment_and_racers_retry() {
    let (_file, raw) = ftok_key("sysv-init-panics", b'X');
    let _rm = RmKey(raw);
    let key = SysvKey::Key(raw);
    let result = catch_unwind(AssertUnwindSafe(|| {
        ShmBox::sysv_open_or_create(key, || -> AtomicU64 { panic!("init fails on purpose") })
    }));
    assert!(result.is_err());
    let err = ShmBox::<AtomicU64>::sysv_open(key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let results = panic_in_init_while_racers_wait(
        |init| ShmBox::sysv_open_or_create(key, init),
        vec![
            Box::new(move || {
                racer_opts()
                    .sysv_open::<AtomicU64>(key)
                    .map(|b| b.load(SeqCst))
            }),
            Box::new(move || {
                racer_opts()
                    .sysv_open_or_create(key, || AtomicU64::new(77))
                    .map(|b| b.load(SeqCst))
            }),
        ],
        || {
            // SAFETY: shmget with size 0 and no flags only looks the key up.
            let id = unsafe { libc::shmget(raw, 0, 0) };
            id >= 0 && region_util::sysv_attached(id) >= 3
        },
    );
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(*results[1].as_ref().unwrap(), 77);
    let opened = ShmBox::<AtomicU64>::sysv_open(key).unwrap();
    assert_eq!(opened.load(SeqCst), 77);
}
