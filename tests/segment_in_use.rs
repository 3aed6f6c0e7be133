//! `segment_in_use` and `unlink_unused`: the kernel's word on whether any process has a POSIX
//! segment open through shmsync, and removing a segment only when none has.
#![cfg(target_os = "linux")]

mod common;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmsync::{segment_in_use, unlink_unused, ShmBox};

/// How long a test waits for another process before calling it hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// Taken by every test: a child forked by one test inherits every descriptor of the process,
/// the other tests' segment marks included, and would keep their segments in use.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes a test segment however the test ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = shmsync::unlink(&self.0);
    }
}

/// Waits until a child has raised `flag`.
fn wait_raised(flag: &AtomicU32) {
    let raised = common::wait_until(PATIENCE, || flag.load(Ordering::Acquire) == 1);
    assert!(raised, "the child never got ready");
}

/// Forks a child that opens `name` itself, raises `ready` and waits to be killed.
fn child_holding(name: &str, ready: &ShmBox<AtomicU32>) -> common::Child {
    common::fork(|| {
        let Ok(segment) = ShmBox::<u64>::open(name) else {
            return 1;
        };
        ready.store(1, Ordering::Release);
        loop {
            // SAFETY: pause only waits for a signal; SIGKILL ends this child.
            unsafe { libc::pause() };
            let _ = &segment;
        }
    })
}

#[test]
fn a_segment_is_in_use_while_a_box_of_it_lives_in_any_process() {
    let _serial = serial();
    let name = common::unique_name("in-use");
    let _cleanup = Cleanup(name.clone());
    let created = ShmBox::create(&name, 7u64).unwrap();
    assert!(segment_in_use(&name).unwrap(), "the creator's box marks it");
    let ready = ShmBox::new(AtomicU32::new(0)).unwrap();
    let child = child_holding(&name, &ready);
    wait_raised(&ready);
    drop(created);
    assert!(
        segment_in_use(&name).unwrap(),
        "the child's own box still marks it"
    );
    assert!(!unlink_unused(&name).unwrap(), "a segment in use is kept");
    assert_eq!(
        *ShmBox::<u64>::open(&name).unwrap(),
        7,
        "and left as it was"
    );

    child.signal(libc::SIGKILL);
    assert!(child.wait_exited(PATIENCE), "the child outlived SIGKILL");
    // Not reaped: a zombie has closed its files, so the mark is gone already.
    assert!(
        !segment_in_use(&name).unwrap(),
        "a killed holder's mark is gone"
    );
    assert!(
        unlink_unused(&name).unwrap(),
        "an unused segment is removed"
    );
    let gone = ShmBox::<u64>::open(&name).unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
}

#[test]
fn a_forked_child_keeps_the_mark_of_the_box_it_inherited() {
    let _serial = serial();
    let name = common::unique_name("inherited");
    let _cleanup = Cleanup(name.clone());
    let created = ShmBox::create(&name, 0u64).unwrap();
    let ready = ShmBox::new(AtomicU32::new(0)).unwrap();
    // The child holds the parent's box (and its descriptor), inherited by fork.
    let child = common::fork(|| {
        ready.store(1, Ordering::Release);
        loop {
            // SAFETY: pause only waits for a signal; SIGKILL ends this child.
            unsafe { libc::pause() };
        }
    });
    wait_raised(&ready);
    drop(created);
    assert!(
        segment_in_use(&name).unwrap(),
        "the child still maps the segment it inherited"
    );
    drop(child); // SIGKILLs and reaps it
    assert!(!segment_in_use(&name).unwrap());
}

#[test]
fn unlink_unused_removes_only_the_unused_segment() {
    let _serial = serial();
    let (used, unused) = (common::unique_name("used"), common::unique_name("unused"));
    let _cleanup = (Cleanup(used.clone()), Cleanup(unused.clone()));
    let kept = ShmBox::create(&used, 1u64).unwrap();
    drop(ShmBox::create(&unused, 2u64).unwrap());
    assert!(!unlink_unused(&used).unwrap());
    assert!(unlink_unused(&unused).unwrap());
    assert_eq!(*ShmBox::<u64>::open(&used).unwrap(), 1);
    assert_eq!(*kept, 1);
    let err = unlink_unused(&unused).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn files_that_are_not_shmsync_segments_are_refused_and_left_alone() {
    let _serial = serial();
    let name = common::unique_name("foreign");
    let _cleanup = Cleanup(name.clone());
    let path = format!("/dev/shm{name}");
    std::fs::write(&path, b"not a segment, just bytes").unwrap();
    for err in [
        segment_in_use(&name).unwrap_err(),
        unlink_unused(&name).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("not a shmsync segment"), "{err}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"not a segment, just bytes");
}

#[test]
fn an_opener_after_removal_finds_nothing_and_open_or_create_makes_a_new_one() {
    let _serial = serial();
    let name = common::unique_name("recreated");
    let _cleanup = Cleanup(name.clone());
    drop(ShmBox::create(&name, 5u64).unwrap());
    assert!(unlink_unused(&name).unwrap());
    let fresh = ShmBox::open_or_create(&name, || 9u64).unwrap();
    assert_eq!(*fresh, 9, "a new segment, not the removed one");
    assert!(segment_in_use(&name).unwrap());
}
