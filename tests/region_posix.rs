//! POSIX named segments: create/open across processes, errors, permissions, unlink, the
//! `open_or_create` race, and creators that die or stall mid-initialisation.

mod common;
mod region_util;

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use region_util::{Unlink, INITIALIZING};
use shmsync::{ShmBox, ShmOptions};

/// Environment variable carrying a segment name to a spawned role.
const SEGMENT_VAR: &str = "SHMSYNC_TEST_SEGMENT";
/// How long a child waits for the parent's go-ahead before it gives up.
const STEP: Duration = Duration::from_secs(30);

fn segment_from_env() -> String {
    std::env::var(SEGMENT_VAR).expect("segment name in the environment")
}

#[test]
fn created_segment_is_seen_and_written_by_an_unrelated_process() {
    if common::role().as_deref() == Some("opener") {
        let opened = ShmBox::<AtomicU64>::open(&segment_from_env()).unwrap();
        assert_eq!(opened.load(SeqCst), 41);
        opened.store(42, SeqCst);
        return;
    }
    let seg = Unlink::new("unrelated");
    let created = ShmBox::create(seg.name(), AtomicU64::new(41)).unwrap();
    let child = common::spawn_role(
        "created_segment_is_seen_and_written_by_an_unrelated_process",
        "opener",
        &[(SEGMENT_VAR, seg.name())],
    );
    assert_eq!(common::wait_spawned(child), Some(0));
    assert_eq!(created.load(SeqCst), 42);
}

#[test]
fn segment_outlives_an_unrelated_creator_until_unlinked() {
    if common::role().as_deref() == Some("creator") {
        let created = ShmBox::create(&segment_from_env(), AtomicU64::new(7)).unwrap();
        created.fetch_add(1, SeqCst);
        return; // exits without unlinking
    }
    let seg = Unlink::new("outlives");
    let child = common::spawn_role(
        "segment_outlives_an_unrelated_creator_until_unlinked",
        "creator",
        &[(SEGMENT_VAR, seg.name())],
    );
    assert_eq!(common::wait_spawned(child), Some(0));
    let opened = ShmBox::<AtomicU64>::open(seg.name()).unwrap();
    assert_eq!(opened.load(SeqCst), 8);
}

#[test]
fn creating_an_existing_name_is_already_exists() {
    let seg = Unlink::new("twice");
    let first = ShmBox::create(seg.name(), 1u64).unwrap();
    let err = ShmBox::create(seg.name(), 2u64).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    // Another type is refused the same way, and the first value is untouched.
    let err = ShmBox::create(seg.name(), [0u8; 3]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(*first, 1);
    assert_eq!(*ShmBox::<u64>::open(seg.name()).unwrap(), 1);
}

#[test]
fn missing_names_are_not_found() {
    let seg = Unlink::new("missing");
    let err = ShmBox::<u64>::open(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = ShmBox::<u64>::unlink(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        !seg.path().exists(),
        "a failed open must not create the name"
    );
}

#[test]
fn bad_names_are_invalid_input() {
    let too_long = format!("/{}", "x".repeat(255));
    let bad = [
        "",
        "/",
        "no-leading-slash",
        "/inner/slash",
        "/trailing/",
        "//double",
        "/.",
        "/..",
        "/nul\0byte",
        too_long.as_str(),
    ];
    for name in bad {
        let kinds = [
            ShmBox::create(name, 0u32).map(drop).unwrap_err().kind(),
            ShmBox::<u32>::open(name).map(drop).unwrap_err().kind(),
            ShmBox::open_or_create(name, || 0u32)
                .map(drop)
                .unwrap_err()
                .kind(),
            ShmBox::<u32>::unlink(name).unwrap_err().kind(),
        ];
        assert_eq!(kinds, [ErrorKind::InvalidInput; 4], "name {name:?}");
    }
}

#[test]
fn longest_valid_name_works() {
    let base = region_util::Unlink::new("long");
    let name = format!("{}{}", base.name(), "y".repeat(255 - base.name().len()));
    assert_eq!(name.len(), 255);
    let seg = Unlink(name);
    let created = ShmBox::create(seg.name(), 3u16).unwrap();
    assert_eq!(*ShmBox::<u16>::open(seg.name()).unwrap(), 3);
    drop(created);
    ShmBox::<u16>::unlink(seg.name()).unwrap();
}

#[test]
fn default_mode_is_0600_and_mode_option_is_exact_whatever_the_umask() {
    // Fork: the umask is process-wide, so the child changes it away from the harness.
    let child = common::fork(|| {
        for umask in [0o000, 0o022, 0o077, 0o777] {
            // SAFETY: umask only changes this child's file creation mask.
            unsafe { libc::umask(umask) };
            for (opts, want) in [
                (ShmOptions::new(), 0o600),
                (ShmOptions::new().mode(0o660), 0o660),
                (ShmOptions::new().mode(0o644), 0o644),
            ] {
                let seg = Unlink::new("mode");
                let created = opts.create(seg.name(), 0u8).unwrap();
                let mode = std::fs::metadata(seg.path()).unwrap().permissions().mode();
                if mode & 0o777 != want {
                    eprintln!("umask {umask:o}: mode {mode:o}, expected {want:o}");
                    return 1;
                }
                drop(created);
            }
            // The plain shortcut uses 0600 as well.
            let seg = Unlink::new("mode");
            let created = ShmBox::create(seg.name(), 0u8).unwrap();
            let mode = std::fs::metadata(seg.path()).unwrap().permissions().mode();
            if mode & 0o777 != 0o600 {
                return 2;
            }
            drop(created);
        }
        0
    });
    child.join();
}

#[test]
fn another_user_gets_permission_denied() {
    if !region_util::is_root() {
        println!("note: not root, cannot act as another user; skipped");
        return;
    }
    let seg = Unlink::new("denied");
    let created = ShmBox::create(seg.name(), AtomicU64::new(5)).unwrap();
    // Fork: the child drops to nobody and must be refused the 0600 segment.
    let child = common::fork(|| {
        if !region_util::become_nobody() {
            return 3;
        }
        match ShmBox::<AtomicU64>::open(seg.name()) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            _ => return 1,
        }
        match ShmBox::open_or_create(seg.name(), || AtomicU64::new(9)) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            _ => return 2,
        }
        0
    });
    child.join();
    assert_eq!(created.load(SeqCst), 5);
}

#[test]
fn segment_owned_by_another_user_is_refused_unless_trusted() {
    if !region_util::is_root() {
        println!("note: not root, cannot act as another user; skipped");
        return;
    }
    let seg = Unlink::new("foreign");
    // Fork: the child, as nobody, creates a segment everyone may read and write.
    let child = common::fork(|| {
        if !region_util::become_nobody() {
            return 3;
        }
        let opts = ShmOptions::new().mode(0o666);
        match opts.create(seg.name(), AtomicU64::new(17)) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    });
    child.join();
    let meta = std::fs::metadata(seg.path()).unwrap();
    assert_eq!(meta.uid(), region_util::NOBODY);
    let before = region_util::read_segment(seg.name());

    let err = ShmBox::<AtomicU64>::open(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = ShmBox::open_or_create(seg.name(), || AtomicU64::new(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = ShmOptions::new()
        .trust_owner(12345)
        .open::<AtomicU64>(seg.name())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(region_util::read_segment(seg.name()), before);

    // Trusting the owner is not enough for a segment everyone may write.
    let trusted = ShmOptions::new().trust_owner(region_util::NOBODY);
    let err = trusted.open::<AtomicU64>(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let trusted = trusted.allow_group_or_other_write(true);
    let opened = trusted.open::<AtomicU64>(seg.name()).unwrap();
    assert_eq!(opened.load(SeqCst), 17);
}

fn assert_refused_as_writable(err: std::io::Error, mode: &str) {
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let text = err.to_string();
    assert!(text.contains(mode), "{err}");
    assert!(text.contains("allow_group_or_other_write"), "{err}");
}

/// Regression: a segment that its group or other users may write was opened like any
/// other, though any of them could have forged its bytes, lock state included.
#[test]
fn segments_writable_by_group_or_others_are_refused_unless_allowed() {
    let seg = Unlink::new("writable");
    // The creator gets its segment whatever the mode; openers are refused.
    let shared = ShmOptions::new().mode(0o666);
    let created = shared
        .open_or_create(seg.name(), || AtomicU64::new(8))
        .unwrap();
    let mode = std::fs::metadata(seg.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o666);
    let ran = std::cell::Cell::new(false);
    for err in [
        ShmBox::<AtomicU64>::open(seg.name()).map(drop).unwrap_err(),
        shared.open::<AtomicU64>(seg.name()).map(drop).unwrap_err(),
        shared
            .open_or_create(seg.name(), || {
                ran.set(true);
                AtomicU64::new(9)
            })
            .map(drop)
            .unwrap_err(),
    ] {
        assert_refused_as_writable(err, "0666");
    }
    assert!(!ran.get());
    let allowed = ShmOptions::new().allow_group_or_other_write(true);
    assert_eq!(
        allowed.open::<AtomicU64>(seg.name()).unwrap().load(SeqCst),
        8
    );
    created.store(10, SeqCst);

    for (mode, refused) in [(0o620, true), (0o602, true), (0o640, false), (0o644, false)] {
        let other = Unlink::new("writable-mode");
        let _made = ShmOptions::new()
            .mode(mode)
            .create(other.name(), 0u64)
            .unwrap();
        match ShmBox::<u64>::open(other.name()) {
            Err(err) if refused => assert_refused_as_writable(err, &format!("{mode:04o}")),
            Ok(_) if !refused => {}
            result => panic!("mode {mode:o}: {:?}", result.map(drop)),
        }
    }

    if !region_util::is_root() {
        println!("note: not root, cannot act as another user; the other-user part is skipped");
        return;
    }
    // Fork: another user is refused root's 0666 segment unless it allows other writers.
    let child = common::fork(|| {
        if !region_util::become_nobody() {
            return 3;
        }
        match ShmBox::<AtomicU64>::open(seg.name()) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            _ => return 1,
        }
        let allowed = ShmOptions::new().allow_group_or_other_write(true);
        match allowed.open::<AtomicU64>(seg.name()) {
            Ok(b) if b.load(SeqCst) == 10 => 0,
            _ => 2,
        }
    });
    child.join();
}

/// Regression: a directory where the segment's file would be (`/dev/shm/<name>`) was
/// reported as a bare "Invalid argument".
#[test]
fn a_directory_at_the_name_is_reported_as_a_directory() {
    let seg = Unlink::new("directory");
    let dir = region_util::RemoveDir(seg.path());
    std::fs::create_dir(&dir.0).unwrap();
    for err in [
        ShmBox::<u64>::open(seg.name()).map(drop).unwrap_err(),
        ShmBox::open_or_create(seg.name(), || 0u64)
            .map(drop)
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
    let err = ShmBox::create(seg.name(), 0u64).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(dir.0.is_dir());
}

#[test]
fn unlinked_name_is_gone_but_open_handles_keep_working() {
    let seg = Unlink::new("unlink");
    let created = ShmBox::create(seg.name(), AtomicU64::new(1)).unwrap();
    let opened = ShmBox::<AtomicU64>::open(seg.name()).unwrap();
    ShmBox::<AtomicU64>::unlink(seg.name()).unwrap();

    let err = ShmBox::<AtomicU64>::open(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    created.store(2, SeqCst);
    assert_eq!(opened.load(SeqCst), 2);
    // Fork: a child inherits the handles of the unlinked segment and still shares it.
    let child = common::fork(|| {
        if opened.load(SeqCst) != 2 {
            return 1;
        }
        created.store(3, SeqCst);
        0
    });
    child.join();
    assert_eq!(opened.load(SeqCst), 3);

    // The name is free again, for an independent segment.
    let again = ShmBox::create(seg.name(), AtomicU64::new(100)).unwrap();
    assert_eq!(again.load(SeqCst), 100);
    assert_eq!(created.load(SeqCst), 3);
}

/// Slots of the control block shared with the racing children.
const READY: usize = 0;
const START: usize = 1;
const INITS: usize = 2;
const SEEN: usize = 3;
const RACERS: usize = 8;

#[test]
fn open_or_create_raced_by_eight_processes_initialises_once() {
    for round in 0..4 {
        let seg = Unlink::new("race");
        let ctl = ShmBox::new(std::array::from_fn::<AtomicU64, 16, _>(|_| {
            AtomicU64::new(0)
        }))
        .unwrap();
        let children: Vec<_> = (0..RACERS)
            .map(|i| {
                let (ctl, name) = (&ctl, seg.name());
                // Fork: each child waits for the shared start flag, then races the others.
                common::fork(move || {
                    ctl[READY].fetch_add(1, SeqCst);
                    if !common::wait_until(STEP, || ctl[START].load(SeqCst) == 1) {
                        return 2;
                    }
                    let boxed = ShmBox::open_or_create(name, || {
                        ctl[INITS].fetch_add(1, SeqCst);
                        AtomicU64::new(1000 + i as u64)
                    });
                    match boxed {
                        Ok(b) => {
                            ctl[SEEN + i].store(b.load(SeqCst), SeqCst);
                            0
                        }
                        Err(e) => {
                            eprintln!("racer {i}: {e}");
                            1
                        }
                    }
                })
            })
            .collect();
        assert!(common::wait_until(STEP, || ctl[READY].load(SeqCst) == RACERS as u64));
        ctl[START].store(1, SeqCst);
        for child in children {
            child.join();
        }
        assert_eq!(ctl[INITS].load(SeqCst), 1, "round {round}");
        let seen: Vec<u64> = (0..RACERS).map(|i| ctl[SEEN + i].load(SeqCst)).collect();
        assert!((1000..1000 + RACERS as u64).contains(&seen[0]), "{seen:?}");
        assert!(
            seen.iter().all(|&v| v == seen[0]),
            "round {round}: {seen:?}"
        );
        let opened = ShmBox::<AtomicU64>::open(seg.name()).unwrap();
        assert_eq!(opened.load(SeqCst), seen[0]);
    }
}

#[test]
fn opener_racing_a_slow_init_closure_waits_for_the_live_creator() {
    let seg = Unlink::new("slow-init");
    let boxed = ShmBox::open_or_create(seg.name(), || {
        // While `init` runs, the header already names this process as its creator...
        let bytes = region_util::read_segment(seg.name());
        assert_eq!(
            region_util::state(&bytes),
            INITIALIZING | region_util::my_token()
        );
        // ...so an opener waits for it (and times out) instead of calling it garbage.
        // Fork: the child opens with a short init timeout while this init is unfinished.
        let mut child = common::fork(|| {
            let opts = ShmOptions::new().init_timeout(Duration::from_millis(300));
            match opts.open::<AtomicU64>(seg.name()) {
                Err(e) if e.kind() == ErrorKind::TimedOut => 0,
                Err(e) => {
                    eprintln!("opener: {e}");
                    1
                }
                Ok(_) => 2,
            }
        });
        assert_eq!(child.wait(), common::Exit::Code(0));
        AtomicU64::new(77)
    })
    .unwrap();
    assert_eq!(boxed.load(SeqCst), 77);
    assert_eq!(
        ShmBox::<AtomicU64>::open(seg.name()).unwrap().load(SeqCst),
        77
    );
}

/// The bytes of a segment holding an `AtomicU64` whose header says `pid` is initialising it.
fn initialising_bytes(pid: u32) -> Vec<u8> {
    let mut bytes = region_util::valid_segment_bytes(AtomicU64::new(0));
    region_util::set_state(&mut bytes, INITIALIZING | pid);
    bytes
}

/// Forks a creator that writes a segment by hand, leaves it `INITIALIZING | its pid`, and
/// exits at once.
fn creator_that_dies(name: &str) -> common::Child {
    // Fork: the child creates, sizes and half-initialises the segment, then `_exit`s.
    common::fork(|| {
        match region_util::write_raw_segment(name, &initialising_bytes(region_util::my_token())) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    })
}

fn assert_creator_died(err: std::io::Error) {
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("died"), "{err}");
}

#[test]
fn creator_that_died_mid_init_is_reported_not_waited_for() {
    // A long init timeout: waiting for a dead creator would end in TimedOut, not InvalidData.
    let opts = ShmOptions::new().init_timeout(Duration::from_secs(60));

    // A reaped creator: its pid is gone.
    let seg = Unlink::new("died");
    creator_that_dies(seg.name()).join();
    let before = region_util::read_segment(seg.name());
    assert_creator_died(opts.open::<AtomicU64>(seg.name()).unwrap_err());
    let ran = std::cell::Cell::new(false);
    let err = opts
        .open_or_create(seg.name(), || {
            ran.set(true);
            AtomicU64::new(1)
        })
        .unwrap_err();
    assert_creator_died(err);
    assert!(!ran.get(), "init must not run over a segment that exists");
    assert_eq!(region_util::read_segment(seg.name()), before);

    // A creator that is dead but not reaped yet (a zombie) counts as dead too.
    let seg = Unlink::new("zombie");
    let mut zombie = creator_that_dies(seg.name());
    assert!(zombie.wait_exited(STEP));
    assert_creator_died(opts.open::<AtomicU64>(seg.name()).unwrap_err());
    assert_creator_died(
        opts.open_or_create(seg.name(), || AtomicU64::new(1))
            .unwrap_err(),
    );
    assert_eq!(zombie.wait(), common::Exit::Code(0));

    // After unlinking the wreck, the name can be created afresh.
    ShmBox::<AtomicU64>::unlink(seg.name()).unwrap();
    let fresh = opts
        .open_or_create(seg.name(), || AtomicU64::new(5))
        .unwrap();
    assert_eq!(fresh.load(SeqCst), 5);
}

/// In a forked child: writes a half-initialised segment naming this process as its creator
/// and takes the creator's lock, as a live creator would hold it; `None` if writing failed.
fn pose_as_live_creator(name: &str) -> Option<std::fs::File> {
    let bytes = initialising_bytes(region_util::my_token());
    region_util::write_raw_segment(name, &bytes).ok()?;
    Some(region_util::hold_creator_lock(name))
}

#[test]
fn live_creator_that_never_finishes_times_out() {
    let seg = Unlink::new("stalled");
    let ctl = ShmBox::new([AtomicU64::new(0), AtomicU64::new(0)]).unwrap();
    // Fork: the child half-initialises the segment, holding the creator's lock, and stays
    // alive until released.
    let child = common::fork(|| {
        let Some(_lock) = pose_as_live_creator(seg.name()) else {
            return 1;
        };
        ctl[0].store(1, SeqCst);
        if common::wait_until(common::CHILD_DEADLINE, || ctl[1].load(SeqCst) == 1) {
            0
        } else {
            2
        }
    });
    assert!(common::wait_until(STEP, || ctl[0].load(SeqCst) == 1));

    let timeout = Duration::from_millis(150);
    let opts = ShmOptions::new().init_timeout(timeout);
    let started = Instant::now();
    let err = opts.open::<AtomicU64>(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        started.elapsed() >= timeout,
        "gave up before the init timeout"
    );
    let err = opts
        .open_or_create(seg.name(), || AtomicU64::new(1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");

    ctl[1].store(1, SeqCst);
    child.join();
    // Now the creator is gone: the same segment reads as abandoned.
    assert_creator_died(opts.open::<AtomicU64>(seg.name()).unwrap_err());
}

#[test]
fn opener_waiting_for_a_live_creator_sees_the_value_once_it_finishes() {
    let seg = Unlink::new("finishes");
    let ctl = ShmBox::new([AtomicU64::new(0), AtomicU64::new(0)]).unwrap();
    // Fork: the child half-initialises the segment, holding the creator's lock, then
    // finishes it when told to.
    let child = common::fork(|| {
        let Some(_lock) = pose_as_live_creator(seg.name()) else {
            return 1;
        };
        ctl[0].store(1, SeqCst);
        if !common::wait_until(STEP, || ctl[1].load(SeqCst) == 1) {
            return 2;
        }
        finish_by_hand(seg.name(), 123);
        0
    });
    assert!(common::wait_until(STEP, || ctl[0].load(SeqCst) == 1));
    let opener = std::thread::spawn({
        let name = seg.name().to_string();
        move || {
            ShmOptions::new()
                .init_timeout(Duration::from_secs(30))
                .open::<AtomicU64>(&name)
        }
    });
    ctl[1].store(1, SeqCst);
    let opened = opener.join().unwrap().unwrap();
    assert_eq!(opened.load(SeqCst), 123);
    child.join();
}

/// Writes `value` and then the READY state into a half-initialised segment, as its creator.
fn finish_by_hand(name: &str, value: u64) {
    use std::sync::atomic::AtomicU32;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(region_util::dev_shm_path(name))
        .unwrap();
    // SAFETY: the segment file is only accessed through atomics here and in the opener.
    let map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    let base = map.as_ptr();
    // SAFETY: offset HEADER_SIZE holds the 8-aligned AtomicU64 value within the mapping.
    let slot = unsafe { &*base.add(region_util::HEADER_SIZE).cast::<AtomicU64>() };
    slot.store(value, SeqCst);
    // SAFETY: offset 16 holds the 4-aligned state word within the mapping.
    let state = unsafe { &*base.add(region_util::STATE_OFFSET).cast::<AtomicU32>() };
    state.store(1, SeqCst);
}

/// Regression: opening trusted the value's bytes, which any code in the process can write
/// through the segment's file; a `bool` holding 2 then read as both `true` and `false`.
#[test]
fn forged_bool_in_a_named_segment_is_refused_and_a_valid_one_accepted() {
    use std::os::unix::fs::FileExt;
    let seg = Unlink::new("forged-bool");
    drop(ShmBox::create(seg.name(), (7u32, true)).unwrap());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(region_util::dev_shm_path(seg.name()))
        .unwrap();
    // The value follows the 64-byte header; the bool is the tuple's second field.
    let at = (region_util::HEADER_SIZE + std::mem::offset_of!((u32, bool), 1)) as u64;
    file.write_all_at(&[2], at).unwrap();
    let err = ShmBox::<(u32, bool)>::open(seg.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    file.write_all_at(&[0], at).unwrap();
    assert_eq!(
        *ShmBox::<(u32, bool)>::open(seg.name()).unwrap(),
        (7, false)
    );
}
