//! `ShmBarrier` across forked processes: generations in lockstep with one leader each, a
//! party killed while waiting or before arriving breaks the generation for the others,
//! timeouts take the arrival back, a broken barrier recovers once a new party joins, and
//! forged bytes never make a wait hang or spin past its timeout.
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{fork, wait_until, Child, Exit, Rng, CHILD_DEADLINE};
use shmsync::__barrier_test_hooks as hooks;
use shmsync::{BarrierError, ShmBarrier, ShmBox, ShmSafe};

const WORKERS: usize = 4;
const PHASES: u32 = 50;

/// A barrier, each worker's progress mark, and a count of leaders per phase.
#[derive(ShmSafe)]
#[repr(C)]
struct Scene {
    barrier: ShmBarrier,
    marks: [AtomicU32; WORKERS],
    leaders: [AtomicU32; PHASES as usize],
    ready: AtomicU32,
}

fn scene(parties: u32) -> ShmBox<Scene> {
    ShmBox::new(Scene {
        barrier: ShmBarrier::new(parties),
        marks: Default::default(),
        leaders: std::array::from_fn(|_| AtomicU32::new(0)),
        ready: AtomicU32::new(0),
    })
    .unwrap()
}

/// How many parties have arrived in the current generation.
fn arrived(barrier: &ShmBarrier) -> u32 {
    (hooks::state(barrier).0 as u32).count_ones()
}

/// Sleeps until a signal ends the process.
fn pause_forever() -> ! {
    loop {
        // SAFETY: pause only sleeps until a signal arrives.
        unsafe { libc::pause() };
    }
}

/// One worker: marks each phase, waits, and checks that every worker reached the phase and
/// none is past the next one. Exit code 0, or the phase (+10) that went wrong.
fn worker(s: &Scene, me: usize) -> i32 {
    let mut party = s.barrier.join().expect("a free place");
    for phase in 0..PHASES {
        s.marks[me].store(phase + 1, Ordering::SeqCst);
        match party.wait() {
            Ok(r) => {
                if r.is_leader() {
                    s.leaders[phase as usize].fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(_) => return 2,
        }
        let behind_or_ahead = s.marks.iter().any(|m| {
            let mark = m.load(Ordering::SeqCst);
            mark < phase + 1 || mark > phase + 2
        });
        if behind_or_ahead {
            return 10 + phase as i32;
        }
    }
    0
}

#[test]
fn forked_workers_pass_every_generation_in_lockstep_with_one_leader_each() {
    let s = scene(WORKERS as u32);
    // Fork the workers: each joins, runs every phase and exits with its verdict.
    let children: Vec<Child> = (0..WORKERS).map(|me| fork(|| worker(&s, me))).collect();
    for child in children {
        child.join();
    }
    for (phase, leaders) in s.leaders.iter().enumerate() {
        assert_eq!(leaders.load(Ordering::SeqCst), 1, "phase {phase}");
    }
    assert!(!s.barrier.is_broken());
}

/// A child that joins, reports, and then either waits (`wait_first`) or sleeps until killed.
fn doomed(s: &Scene, wait_first: bool) -> Child {
    // Fork: the child joins, says so, and waits or pauses until it is killed.
    fork(|| {
        let mut party = s.barrier.join().expect("a free place");
        s.ready.fetch_add(1, Ordering::SeqCst);
        if wait_first {
            let _ = party.wait();
            return 1;
        }
        pause_forever()
    })
}

/// A child that joins, reports, waits once and exits 0 only if the wait says `Broken`.
fn expects_broken(s: &Scene) -> Child {
    // Fork: the child's single wait must fail with Broken.
    fork(|| {
        let mut party = s.barrier.join().expect("a free place");
        s.ready.fetch_add(1, Ordering::SeqCst);
        match party.wait() {
            Err(BarrierError::Broken) => 0,
            _ => 1,
        }
    })
}

/// Three parties: a doomed child, a waiting survivor, and the parent, which kills the doomed
/// one once the survivor waits (and the doomed one too, with `doomed_waits`).
fn a_killed_party_breaks_the_generation(doomed_waits: bool) {
    let s = scene(3);
    let mut me = s.barrier.join().unwrap();
    let victim = doomed(&s, doomed_waits);
    let survivor = expects_broken(&s);
    let waiting = if doomed_waits { 2 } else { 1 };
    assert!(wait_until(CHILD_DEADLINE, || {
        s.ready.load(Ordering::SeqCst) == 2 && arrived(&s.barrier) == waiting
    }));
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    survivor.join();
    // The parent was not waiting: its next wait sees the break at once, once.
    assert_eq!(
        me.wait_for(CHILD_DEADLINE).unwrap_err(),
        BarrierError::Broken
    );
    assert!(
        !s.barrier.is_broken(),
        "every live party has seen the break"
    );
}

#[test]
fn a_party_killed_while_waiting_breaks_the_generation_for_the_others() {
    a_killed_party_breaks_the_generation(true);
}

#[test]
fn a_party_killed_before_arriving_breaks_the_generation_for_the_others() {
    a_killed_party_breaks_the_generation(false);
}

#[test]
fn a_timed_wait_alone_times_out_and_takes_its_arrival_back() {
    let s = scene(2);
    let mut me = s.barrier.join().unwrap();
    let err = me.wait_for(Duration::from_millis(20)).unwrap_err();
    assert_eq!(err, BarrierError::TimedOut);
    assert_eq!(arrived(&s.barrier), 0, "the arrival was taken back");
    // Fork: the other party arrives; with the parent's second wait the generation completes.
    let other = fork(|| {
        let mut party = s.barrier.join().expect("a free place");
        match party.wait_for(CHILD_DEADLINE) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    });
    assert!(me.wait_for(CHILD_DEADLINE).is_ok());
    other.join();
}

/// Waits twice, counting leaders in `leaders[0]`; whether both waits succeeded.
fn two_generations(s: &Scene, party: &mut shmsync::ShmBarrierParty<'_>) -> bool {
    (0..2).all(|_| match party.wait_for(CHILD_DEADLINE) {
        Ok(r) => {
            if r.is_leader() {
                s.leaders[0].fetch_add(1, Ordering::SeqCst);
            }
            true
        }
        Err(_) => false,
    })
}

#[test]
fn a_broken_barrier_works_again_once_a_new_party_takes_the_dead_ones_place() {
    let s = scene(3);
    let mut me = s.barrier.join().unwrap();
    let victim = doomed(&s, false);
    assert!(wait_until(CHILD_DEADLINE, || s
        .ready
        .load(Ordering::SeqCst)
        == 1));
    // Fork: a survivor that sees the break, then goes on for two more generations.
    let survivor = fork(|| {
        let mut party = s.barrier.join().expect("a free place");
        s.ready.fetch_add(1, Ordering::SeqCst);
        if party.wait() != Err(BarrierError::Broken) {
            return 1;
        }
        i32::from(!two_generations(&s, &mut party))
    });
    assert!(wait_until(CHILD_DEADLINE, || arrived(&s.barrier) == 1));
    assert_eq!(victim.kill(), Exit::Signal(libc::SIGKILL));
    assert_eq!(
        me.wait_for(CHILD_DEADLINE).unwrap_err(),
        BarrierError::Broken
    );
    // Fork: the replacement joins the freed place and waits twice.
    let replacement = fork(|| {
        let mut party = s.barrier.join().expect("the dead party's place");
        i32::from(!two_generations(&s, &mut party))
    });
    assert!(two_generations(&s, &mut me));
    survivor.join();
    replacement.join();
    assert_eq!(
        s.leaders[0].load(Ordering::SeqCst),
        2,
        "one leader per generation"
    );
    assert!(!s.barrier.is_broken());
}

#[test]
fn joining_takes_over_the_place_of_a_dead_party_and_breaks_its_generation() {
    let s = scene(2);
    let mut me = s.barrier.join().unwrap();
    // Fork: the child joins the last place and exits without leaving (as a crash would).
    fork(|| {
        std::mem::forget(s.barrier.join().expect("a free place"));
        0
    })
    .join();
    let mut newcomer = s.barrier.join().expect("the dead party's place");
    assert_eq!(
        me.wait_for(CHILD_DEADLINE).unwrap_err(),
        BarrierError::Broken
    );
    // Both live parties know; the newcomer owes nothing and the next generation completes.
    std::thread::scope(|scope| {
        let other = scope.spawn(move || newcomer.wait_for(CHILD_DEADLINE).is_ok());
        assert!(me.wait_for(CHILD_DEADLINE).is_ok());
        assert!(other.join().unwrap());
    });
}

#[test]
fn leaving_while_another_party_waits_breaks_the_generation() {
    let s = scene(3);
    let leaver = s.barrier.join().unwrap();
    let waiter = expects_broken(&s);
    assert!(wait_until(CHILD_DEADLINE, || arrived(&s.barrier) == 1));
    drop(leaver);
    waiter.join();
}

#[test]
fn a_full_barrier_refuses_a_third_party() {
    let barrier = ShmBarrier::new(2);
    let (_a, _b) = (barrier.join().unwrap(), barrier.join().unwrap());
    assert!(barrier.join().is_none());
}

/// Runs `body` in a forked child that must finish within the deadline (a hang or a spin
/// becomes a test failure instead of a hung run).
fn bounded(body: impl FnOnce() -> i32) {
    let mut child = fork(body);
    assert_eq!(
        child.wait_timeout(Duration::from_secs(30)),
        Some(Exit::Code(0)),
        "the forged barrier hung or failed"
    );
}

#[test]
fn forged_states_never_hang_a_timed_wait() {
    let token = shmsync::futex::__test_hooks::my_token();
    let gen = 5u64 << 32;
    let forged = [
        (gen | 1 << 62, 0, 0),            // broken, owed by nobody
        (gen | 1 << 62 | 0b100, 2, 0),    // broken, owed by a free place
        (gen | 0b1, 0, 0),                // a free place marked arrived
        (gen | 0b10, 1, 0xC000_0001),     // a place holding no token
        (gen | 0b10 | 1 << 63, 1, token), // our own token, arrived, sleepers
        (u64::MAX, 0, u32::MAX),          // everything set
    ];
    for (state, place, owner) in forged {
        bounded(|| {
            let barrier = ShmBarrier::new(3);
            hooks::forge(&barrier, state, place, owner);
            let mut parties: Vec<_> = std::iter::from_fn(|| barrier.join()).collect();
            for party in &mut parties {
                let _ = party.wait_for(Duration::from_millis(30));
            }
            0
        });
    }
}

#[test]
fn random_bytes_never_hang_a_timed_wait() {
    let mut rng = Rng::new(0x5eed_ba77);
    for _ in 0..20 {
        let bytes: [u8; core::mem::size_of::<ShmBarrier>()] = std::array::from_fn(|_| rng.byte());
        bounded(|| {
            let barrier = ShmBox::new(ShmBarrier::new(2)).unwrap();
            // SAFETY: every bit pattern is a ShmBarrier state (BitPatterns::Any); this writes
            // exactly its bytes, which another process mapping the segment could also write.
            unsafe {
                let p = (&*barrier as *const ShmBarrier).cast_mut().cast::<u8>();
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            }
            let mut parties: Vec<_> = std::iter::from_fn(|| barrier.join()).take(40).collect();
            for party in &mut parties {
                let _ = party.wait_for(Duration::from_millis(10));
            }
            drop(parties);
            let _ = barrier
                .join()
                .map(|mut p| p.wait_for(Duration::from_millis(10)));
            0
        });
    }
}
