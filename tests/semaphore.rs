//! `ShmSemaphore` across forked processes: permits held as guards come back when their
//! process dies (at any point of acquiring or releasing), forgotten ones do not, and waiters
//! killed while blocked harm nobody.
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{fork, wait_until, Exit, CHILD_DEADLINE};
use shmsync::__semaphore_test_hooks as hooks;
use shmsync::{ShmBox, ShmSafe, ShmSemaphore};

/// A semaphore and a flag word the processes signal each other through.
#[derive(ShmSafe)]
#[repr(C)]
struct Scene {
    sem: ShmSemaphore,
    flag: AtomicU32,
}

fn scene(permits: u32) -> ShmBox<Scene> {
    ShmBox::new(Scene {
        sem: ShmSemaphore::new(permits),
        flag: AtomicU32::new(0),
    })
    .unwrap()
}

/// Sleeps until a signal ends the process.
fn pause_forever() -> ! {
    loop {
        // SAFETY: pause only sleeps until a signal arrives.
        unsafe { libc::pause() };
    }
}

/// The liveness token of a process that has exited: a forked child reports its own and
/// `_exit`s, releasing its liveness lock.
fn dead_token() -> u32 {
    let report = ShmBox::new(AtomicU32::new(0)).unwrap();
    // Fork: the child only reports its token and exits.
    fork(|| {
        report.store(shmsync::futex::__test_hooks::my_token(), Ordering::SeqCst);
        0
    })
    .join();
    let token = report.load(Ordering::SeqCst);
    assert_ne!(token, 0);
    token
}

/// The number of holder records that hold a guard's permit (not free, not parked).
fn records_in_use(sem: &ShmSemaphore) -> usize {
    let guarded = |&&r: &&u32| r != 0 && r & hooks::PARKED == 0;
    hooks::state(sem).1.iter().filter(guarded).count()
}

/// A child takes a permit and is SIGKILLed holding it; with `reap`, the parent reaps it first,
/// otherwise it stays a zombie.
fn permit_of_a_killed_holder_comes_back(reap: bool) {
    let s = scene(1);
    // Fork: the child takes the permit, says so, and sleeps until killed.
    let mut holder = fork(|| {
        let permit = s.sem.acquire();
        s.flag.store(1, Ordering::SeqCst);
        std::mem::forget(permit);
        pause_forever()
    });
    assert!(wait_until(CHILD_DEADLINE, || s.flag.load(Ordering::SeqCst) == 1));
    assert!(s.sem.try_acquire().is_none(), "the holder is alive");
    holder.signal(libc::SIGKILL);
    if reap {
        assert_eq!(holder.wait(), Exit::Signal(libc::SIGKILL));
    } else {
        assert!(holder.wait_exited(CHILD_DEADLINE));
    }
    let permit = s.sem.try_acquire_for(CHILD_DEADLINE);
    assert!(permit.is_some(), "the dead holder's permit never came back");
    drop(permit);
    assert_eq!(s.sem.available_permits(), 1);
    assert_eq!(records_in_use(&s.sem), 0);
}

#[test]
fn the_permit_of_a_killed_holder_comes_back() {
    permit_of_a_killed_holder_comes_back(true);
}

#[test]
fn the_permit_of_a_killed_holder_comes_back_before_it_is_reaped() {
    permit_of_a_killed_holder_comes_back(false);
}

#[test]
fn a_waiter_blocked_in_acquire_gets_the_permit_of_a_holder_that_dies() {
    let s = scene(1);
    // Fork: the holder takes the only permit and sleeps until killed.
    let holder = fork(|| {
        std::mem::forget(s.sem.acquire());
        s.flag.store(1, Ordering::SeqCst);
        pause_forever()
    });
    assert!(wait_until(CHILD_DEADLINE, || s.flag.load(Ordering::SeqCst) == 1));
    // Fork: the waiter blocks in `acquire` until the holder's permit comes back.
    let waiter = fork(|| {
        s.flag.store(2, Ordering::SeqCst);
        drop(s.sem.acquire());
        0
    });
    assert!(wait_until(CHILD_DEADLINE, || s.flag.load(Ordering::SeqCst) == 2));
    assert_eq!(holder.kill(), Exit::Signal(libc::SIGKILL));
    waiter.join();
    assert_eq!(s.sem.available_permits(), 1);
}

#[test]
fn a_forgotten_permit_stays_taken_after_its_process_dies() {
    let s = scene(1);
    // Fork: the child takes the permit for good and exits.
    fork(|| {
        s.sem.acquire().forget();
        0
    })
    .join();
    assert_eq!(records_in_use(&s.sem), 0);
    assert!(s.sem.try_acquire().is_none());
    assert_eq!(s.sem.available_permits(), 0);
    s.sem.release(1);
    assert!(s.sem.try_acquire().is_some());
}

#[test]
fn a_death_between_claiming_a_record_and_taking_the_permit_gives_nothing_back() {
    let s = scene(1);
    hooks::forge_record(&s.sem, 3, dead_token(), false);
    let permit = s.sem.try_acquire().expect("the free permit");
    // Nothing left: reclaiming the dead record must not invent a permit.
    assert!(s.sem.try_acquire().is_none());
    assert_eq!(records_in_use(&s.sem), 1, "only our own permit's record");
    drop(permit);
    assert_eq!(s.sem.available_permits(), 1);
}

/// The state a dead holder leaves, and also what a reclaimer that took a dead holder's record
/// over and died before giving the permit back leaves: a record naming a dead process, with
/// its held bit set.
#[test]
fn a_record_naming_a_dead_process_with_its_held_bit_set_gives_one_permit_back() {
    let s = scene(2);
    hooks::forge_record(&s.sem, 7, dead_token(), true);
    assert_eq!(s.sem.available_permits(), 1);
    let first = s.sem.try_acquire().expect("the free permit");
    let second = s.sem.try_acquire().expect("the dead record's permit");
    assert!(s.sem.try_acquire().is_none());
    drop((first, second));
    assert_eq!(s.sem.available_permits(), 2);
    assert_eq!(records_in_use(&s.sem), 0);
}

#[test]
fn a_consumer_in_another_process_takes_what_a_producer_releases() {
    const ITEMS: u32 = 500;
    let s = scene(0);
    // Fork: the consumer takes every posted item for good, then exits.
    let consumer = fork(|| {
        for _ in 0..ITEMS {
            s.sem.acquire().forget();
        }
        0
    });
    for _ in 0..ITEMS {
        s.sem.release(1);
    }
    consumer.join();
    assert_eq!(s.sem.available_permits(), 0);
}

#[test]
fn a_waiter_killed_inside_acquire_leaves_the_other_waiter_working() {
    let s = scene(0);
    // Fork twice: both children block in `acquire`; the second one exits 0 once it gets a permit.
    let doomed = fork(|| {
        s.flag.fetch_add(1, Ordering::SeqCst);
        std::mem::forget(s.sem.acquire());
        1
    });
    let survivor = fork(|| {
        s.flag.fetch_add(1, Ordering::SeqCst);
        s.sem.acquire().forget();
        0
    });
    assert!(wait_until(CHILD_DEADLINE, || s.flag.load(Ordering::SeqCst) == 2));
    // Both are in acquire; whichever sleeps, killing one must not strand the other.
    assert_eq!(doomed.kill(), Exit::Signal(libc::SIGKILL));
    s.sem.release(1);
    survivor.join();
    assert_eq!(s.sem.available_permits(), 0);
    assert_eq!(records_in_use(&s.sem), 0);
}

#[test]
fn more_guards_than_records_wait_for_a_record_even_with_permits_left() {
    let sem = ShmSemaphore::new(ShmSemaphore::MAX_GUARDS + 5);
    let held: Vec<_> = (0..ShmSemaphore::MAX_GUARDS)
        .map(|_| sem.try_acquire().expect("a record and a permit"))
        .collect();
    assert_eq!(sem.available_permits(), 5);
    assert!(sem.try_acquire().is_none());
    assert!(sem.try_acquire_for(Duration::from_millis(3)).is_none());
    drop(held);
    assert_eq!(sem.available_permits(), ShmSemaphore::MAX_GUARDS + 5);
}

#[test]
fn threads_never_hold_more_permits_than_the_semaphore_has() {
    const PERMITS: u32 = 2;
    let sem = ShmSemaphore::new(PERMITS);
    let inside = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..2000 {
                    let _permit = sem.acquire();
                    let before = inside.fetch_add(1, Ordering::SeqCst);
                    assert!(before < PERMITS, "{} holders", before + 1);
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(sem.available_permits(), PERMITS);
}

#[test]
#[should_panic(expected = "ShmSemaphore::release: more than")]
fn releasing_past_the_maximum_panics_and_adds_nothing() {
    let sem = ShmSemaphore::new(ShmSemaphore::MAX_PERMITS);
    let outcome = std::panic::catch_unwind(|| sem.release(1));
    assert_eq!(sem.available_permits(), ShmSemaphore::MAX_PERMITS);
    std::panic::resume_unwind(outcome.expect_err("release must panic"));
}

/// Runs `body` in a forked child that must exit 0 within the deadline: a spin or a hang
/// becomes a failure instead of a hung run.
fn finishes(body: impl FnOnce() -> bool) {
    let mut child = fork(|| i32::from(!body()));
    assert_eq!(
        child.wait_timeout(Duration::from_secs(30)),
        Some(common::Exit::Code(0)),
        "the forged semaphore hung, spun or failed"
    );
}

/// A free record (naming nobody) whose held bit is set: only forged bytes make one. Every
/// record is tried at the front of the table (the acquirer's home record first).
#[test]
fn a_free_record_with_its_held_bit_set_never_makes_acquire_spin() {
    for i in [0, 1, hooks::RECORDS - 1] {
        finishes(|| {
            let sem = ShmSemaphore::new(3);
            hooks::forge_record(&sem, i, 0, true);
            // Two permits are counted and the forged record holds the third.
            let taken: Vec<_> = (0..2)
                .map(|_| sem.try_acquire_for(CHILD_DEADLINE))
                .collect();
            let third = sem.acquire();
            let none_left = sem.try_acquire().is_none();
            let all_taken = taken.iter().all(Option::is_some);
            drop((taken, third));
            all_taken && none_left && sem.available_permits() == 3
        });
    }
}

/// Records holding flags but no token (as no process writes): they are reclaimed instead of
/// blocking their table entry forever.
#[test]
fn records_holding_garbage_are_reclaimed() {
    finishes(|| {
        let sem = ShmSemaphore::new(ShmSemaphore::MAX_GUARDS);
        for i in 0..hooks::RECORDS {
            hooks::forge_record(&sem, i, 1 << 30, false);
        }
        let permit = sem.try_acquire_for(CHILD_DEADLINE);
        permit.is_some() && records_in_use(&sem) == 1
    });
}
