//! `CMutex` and `ForeignSegment` among Rust processes: owner death as poison and its repair,
//! `ENOTRECOVERABLE` as an error, a stalled mutex that times out, exact counts, checked
//! places and bytes, and a leaked guard that keeps its segment mapped. The C programs' side
//! is `tests/c_interop.rs`.

mod common;
mod region_util;

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;
use std::time::Duration;

use common::{fork, wait_until, Exit};
use region_util::Rmid;
use shmsync::interop::{CMutex, CMutexGuard, CMutexOptions, ForeignSegment};
use shmsync::{ShmOptions, ShmSafe};

/// The data of the classic C pair's `struct shared { pthread_mutex_t lock; int counter;
/// char text[64]; }`.
#[derive(ShmSafe)]
#[repr(C)]
struct Shared {
    counter: i32,
    text: [u8; 64],
}

const STEP: Duration = Duration::from_secs(30);
/// Where the tests keep a flag word, past the mutex.
const FLAG_AT: usize = 1024;

/// A fresh private System V segment of one page, removed when the `Rmid` drops.
fn private_segment() -> (ForeignSegment, Rmid) {
    // SAFETY: shmget only reads its integer arguments.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "shmget: {}", io::Error::last_os_error());
    let rm = Rmid(id);
    (
        ForeignSegment::sysv_attach(id, &ShmOptions::new()).unwrap(),
        rm,
    )
}

/// Initialises a `CMutex<Shared>` at offset 0 of `seg` with `opts`.
fn init_shared(seg: &ForeignSegment, opts: CMutexOptions) -> &CMutex<Shared> {
    let place = seg.place::<CMutex<Shared>>(0).unwrap();
    let value = Shared {
        counter: 0,
        text: [0; 64],
    };
    // SAFETY: nobody else uses the segment yet; a ForeignSegment keeps robust memory mapped.
    unsafe { CMutex::init(place, value, opts) }.unwrap()
}

/// Forks a child that takes `m`, writes a half update, raises the flag and waits to be
/// killed; returns once it holds the lock, then SIGKILLs it.
fn kill_a_holder(seg: &ForeignSegment, m: &CMutex<Shared>) {
    let flag: &AtomicU32 = seg.get(FLAG_AT).unwrap();
    flag.store(0, Ordering::SeqCst);
    let child = fork(|| {
        let Ok(Ok(mut guard)) = m.lock() else {
            return 1;
        };
        guard.counter = -1; // the half update
        flag.store(1, Ordering::SeqCst);
        loop {
            // SAFETY: pause only waits for a signal; the parent kills this child here.
            unsafe { libc::pause() };
        }
    });
    assert!(wait_until(STEP, || flag.load(Ordering::SeqCst) == 1));
    assert_eq!(child.kill(), Exit::Signal(libc::SIGKILL));
}

/// Owner death reaches the next locker as poison with a usable guard; marking it consistent
/// after the repair leaves the mutex working for everyone.
fn death_is_poison_and_mark_consistent_repairs(opts: CMutexOptions) {
    let (seg, _rm) = private_segment();
    let m = init_shared(&seg, opts);
    kill_a_holder(&seg, m);
    let poisoned = match m.lock().unwrap() {
        Err(poisoned) => poisoned,
        Ok(_) => panic!("a dead holder's lock must come back poisoned"),
    };
    let mut guard = poisoned.into_inner();
    assert!(!CMutexGuard::is_consistent(&guard));
    assert_eq!(
        guard.counter, -1,
        "the half update is visible to the repairer"
    );
    guard.counter = 0;
    CMutexGuard::mark_consistent(&mut guard);
    assert!(CMutexGuard::is_consistent(&guard));
    drop(guard);
    let child = fork(|| match m.lock() {
        Ok(Ok(mut guard)) if guard.counter == 0 => {
            guard.counter += 1;
            0
        }
        _ => 1,
    });
    child.join();
    assert_eq!(m.lock().unwrap().unwrap().counter, 1);
}

#[test]
fn a_killed_holder_of_a_robust_mutex_is_poison_and_repaired() {
    death_is_poison_and_mark_consistent_repairs(CMutexOptions::new());
}

#[test]
fn a_killed_holder_of_a_robust_priority_inheritance_mutex_is_poison_and_repaired() {
    death_is_poison_and_mark_consistent_repairs(CMutexOptions::new().prio_inherit(true));
}

#[test]
fn try_lock_and_try_lock_for_see_a_death_as_poison_too() {
    let (seg, _rm) = private_segment();
    let m = init_shared(&seg, CMutexOptions::new());
    kill_a_holder(&seg, m);
    let Err(TryLockError::Poisoned(poisoned)) = m.try_lock().unwrap() else {
        panic!("try_lock must report the death");
    };
    let mut guard = poisoned.into_inner();
    CMutexGuard::mark_consistent(&mut guard);
    drop(guard);
    kill_a_holder(&seg, m);
    let Err(TryLockError::Poisoned(poisoned)) = m.try_lock_for(STEP).unwrap() else {
        panic!("try_lock_for must report the death");
    };
    let mut guard = poisoned.into_inner();
    CMutexGuard::mark_consistent(&mut guard);
}

#[test]
fn an_inconsistent_guard_dropped_unmarked_makes_the_mutex_not_recoverable() {
    let (seg, _rm) = private_segment();
    let m = init_shared(&seg, CMutexOptions::new());
    kill_a_holder(&seg, m);
    let poisoned = m.lock().unwrap().err().expect("poisoned");
    drop(poisoned); // recovery failed: no mark_consistent
    let is_not_recoverable = |e: &io::Error| e.raw_os_error() == Some(libc::ENOTRECOVERABLE);
    assert!(is_not_recoverable(&m.lock().err().expect("an io::Error")));
    assert!(is_not_recoverable(
        &m.try_lock().err().expect("an io::Error")
    ));
    assert!(is_not_recoverable(
        &m.try_lock_for(STEP).err().expect("an io::Error")
    ));
    let child = fork(|| match m.lock() {
        Err(e) if is_not_recoverable(&e) => 0,
        _ => 1,
    });
    child.join();
    // Once no process uses it, it can be initialised again.
    let m = init_shared(&seg, CMutexOptions::new());
    assert!(m.lock().unwrap().is_ok());
}

/// A mutex that is not robust stays locked by its dead holder: timed attempts time out.
fn a_dead_stalled_holder_gives_would_block(opts: CMutexOptions) {
    let (seg, _rm) = private_segment();
    let m = init_shared(&seg, opts.robust(false));
    kill_a_holder(&seg, m);
    common::assert_stays_locked(m);
}

#[test]
fn a_dead_holder_of_a_stalled_mutex_gives_would_block_never_a_hang() {
    a_dead_stalled_holder_gives_would_block(CMutexOptions::new());
}

// With priority inheritance the kernel arbitrates the lock, and a dead owner it cannot find
// makes glibc sleep out the timeout instead of failing.
#[test]
fn a_dead_holder_of_a_stalled_priority_inheritance_mutex_gives_would_block() {
    a_dead_stalled_holder_gives_would_block(CMutexOptions::new().prio_inherit(true));
}

// glibc keeps the holder's thread id in the lock word of a priority-inheritance mutex (the
// kernel needs it to boost the holder), and 1 in that of a normal one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn prio_inherit_sets_up_a_priority_inheritance_mutex() {
    let (seg, _rm) = private_segment();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    for (pi, expected) in [(false, 1), (true, tid)] {
        let opts = CMutexOptions::new().robust(false).prio_inherit(pi);
        let m = init_shared(&seg, opts);
        let guard = m.lock().unwrap().unwrap();
        let word: &AtomicU32 = seg.get(0).unwrap();
        assert_eq!(word.load(Ordering::SeqCst), expected, "prio_inherit({pi})");
        drop(guard);
    }
}

#[test]
fn forked_writers_count_exactly() {
    const WRITERS: i32 = 4;
    const EACH: i32 = 5_000;
    let (seg, _rm) = private_segment();
    let m = init_shared(&seg, CMutexOptions::new());
    let children: Vec<_> = (0..WRITERS)
        .map(|_| {
            fork(|| {
                for _ in 0..EACH {
                    let Ok(Ok(mut guard)) = m.lock() else {
                        return 1;
                    };
                    guard.counter += 1;
                }
                0
            })
        })
        .collect();
    children.into_iter().for_each(common::Child::join);
    assert_eq!(m.lock().unwrap().unwrap().counter, WRITERS * EACH);
}

/// A `bool` that holds a byte it cannot take.
#[derive(ShmSafe)]
#[repr(C)]
struct Flagged {
    on: bool,
}

#[test]
fn a_lock_refuses_data_that_is_not_a_valid_value_and_releases_the_lock() {
    let (seg, _rm) = private_segment();
    let place = seg.place::<CMutex<Flagged>>(0).unwrap();
    // SAFETY: nobody else uses the segment yet; a ForeignSegment keeps robust memory mapped.
    let m = unsafe { CMutex::init(place, Flagged { on: false }, CMutexOptions::new()) }.unwrap();
    let data_at = core::mem::size_of::<libc::pthread_mutex_t>();
    // As a C peer could: store 2 into the bool.
    // SAFETY: the byte lies within the segment; nothing holds a reference to it.
    unsafe { seg.as_ptr().add(data_at).write_volatile(2) };
    let refused = m.lock().err().expect("invalid data is an error");
    assert_eq!(refused.kind(), io::ErrorKind::InvalidData);
    // SAFETY: as above.
    unsafe { seg.as_ptr().add(data_at).write_volatile(1) };
    assert!(
        m.try_lock().unwrap().unwrap().on,
        "the refused lock was released"
    );
}

#[test]
fn typed_access_checks_bounds_alignment_and_bytes() {
    let (seg, _rm) = private_segment();
    assert_eq!(seg.len(), 4096);
    let kind = |r: io::Result<&u64>| r.err().map(|e| e.kind());
    assert_eq!(
        kind(seg.get::<u64>(4092)),
        Some(io::ErrorKind::InvalidInput)
    );
    assert_eq!(
        kind(seg.get::<u64>(usize::MAX - 2)),
        Some(io::ErrorKind::InvalidInput)
    );
    assert_eq!(kind(seg.get::<u64>(4)), Some(io::ErrorKind::InvalidInput));
    assert_eq!(kind(seg.get::<u64>(4088)), None);
    // SAFETY: the byte lies within the segment; nothing holds a reference to it.
    unsafe { seg.as_ptr().add(100).write_volatile(7) };
    let bad = seg.get::<bool>(100).expect_err("7 is no bool");
    assert_eq!(bad.kind(), io::ErrorKind::InvalidData);
    assert!(!*seg.get::<bool>(101).unwrap());
}

#[test]
fn a_leaked_guard_keeps_its_segment_mapped() {
    let (seg, _rm) = private_segment();
    init_shared(&seg, CMutexOptions::new());
    let start = seg.as_ptr();
    // In a child: the leaked guard stays on this thread's robust list for good.
    let child = fork(move || {
        // SAFETY: initialised above, process-shared, of the normal type; the data is used
        // only under the lock.
        let m: &CMutex<Shared> = unsafe { seg.get_unchecked(0) }.unwrap();
        std::mem::forget(m.lock());
        drop(seg);
        // SAFETY: msync only asks whether the page is mapped (ENOMEM when it is not).
        let rc = unsafe { libc::msync(start.cast(), 4096, libc::MS_ASYNC) };
        i32::from(rc != 0)
    });
    child.join();
}

#[test]
fn the_layout_is_the_c_struct_of_the_classic_pair() {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    {
        assert_eq!(core::mem::size_of::<CMutex<Shared>>(), 112);
        assert_eq!(core::mem::offset_of!(Shared, text), 4);
    }
    let m = core::mem::size_of::<libc::pthread_mutex_t>();
    let (seg, _rm) = private_segment();
    let cm = init_shared(&seg, CMutexOptions::new());
    cm.lock().unwrap().unwrap().counter = 0x0102_0304;
    // SAFETY: within the segment; the counter's bytes follow the mutex.
    let raw = unsafe { seg.as_ptr().add(m).cast::<i32>().read_volatile() };
    assert_eq!(raw, 0x0102_0304);
}
