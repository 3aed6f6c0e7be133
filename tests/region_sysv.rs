//! System V segments: create and attach across fork and unrelated processes, lookup errors,
//! removal, the `sysv_open_or_create` race, modes, owners and wrong layouts.

mod common;
mod region_util;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use region_util::{ftok_key, RmKey, Rmid};
use shmsync::{ShmBox, ShmOptions, SysvKey};

const STEP: Duration = Duration::from_secs(30);
const KEY_PATH_VAR: &str = "SHMSYNC_TEST_KEY_PATH";
const ID_VAR: &str = "SHMSYNC_TEST_SYSV_ID";

#[test]
fn private_segment_is_shared_with_a_forked_child_inherited_and_by_id() {
    let created = ShmBox::sysv_create(SysvKey::Private, AtomicU64::new(1)).unwrap();
    let id = created.sysv_id().expect("a System V box has an id");
    let _rm = Rmid(id);
    // Fork: the child uses the inherited attachment, then attaches again by id.
    let child = common::fork(|| {
        if created.load(SeqCst) != 1 {
            return 1;
        }
        created.store(2, SeqCst);
        let Ok(again) = ShmBox::<AtomicU64>::sysv_attach(id) else {
            return 2;
        };
        again.fetch_add(1, SeqCst);
        0
    });
    child.join();
    assert_eq!(created.load(SeqCst), 3);
}

#[test]
fn keyed_segment_is_seen_by_an_unrelated_process() {
    if common::role().as_deref() == Some("sysv-opener") {
        let path = std::env::var(KEY_PATH_VAR).unwrap();
        let key = SysvKey::ftok(&path, b'U').unwrap();
        let opened = ShmBox::<AtomicU64>::sysv_open(key).unwrap();
        assert_eq!(opened.load(SeqCst), 10);
        opened.store(11, SeqCst);
        let id: i32 = std::env::var(ID_VAR).unwrap().parse().unwrap();
        let by_id = ShmBox::<AtomicU64>::sysv_attach(id).unwrap();
        by_id.fetch_add(1, SeqCst);
        return;
    }
    let (file, key) = ftok_key("sysv-unrelated", b'U');
    let _rm = RmKey(key);
    let created = ShmBox::sysv_create(SysvKey::Key(key), AtomicU64::new(10)).unwrap();
    let id = created.sysv_id().unwrap().to_string();
    let child = common::spawn_role(
        "keyed_segment_is_seen_by_an_unrelated_process",
        "sysv-opener",
        &[(KEY_PATH_VAR, file.0.to_str().unwrap()), (ID_VAR, &id)],
    );
    assert_eq!(common::wait_spawned(child), Some(0));
    assert_eq!(created.load(SeqCst), 12);
}

#[test]
fn lookup_errors() {
    let (_file, key) = ftok_key("sysv-missing", b'M');
    let _rm = RmKey(key);
    let err = ShmBox::<u64>::sysv_open(SysvKey::Key(key)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = ShmBox::<u64>::sysv_open(SysvKey::Private).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let created = ShmBox::sysv_create(SysvKey::Key(key), 1u64).unwrap();
    let err = ShmBox::sysv_create(SysvKey::Key(key), 2u64).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(*created, 1);

    let posix = ShmBox::new(0u64).unwrap();
    let err = posix.sysv_remove().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = SysvKey::ftok("/nonexistent/shmsync/key", 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = SysvKey::ftok("/", 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn removed_segment_is_gone_by_key_but_attached_handles_keep_working() {
    let (_file, key) = ftok_key("sysv-remove", b'R');
    let _rm = RmKey(key);
    let created = ShmBox::sysv_create(SysvKey::Key(key), AtomicU64::new(1)).unwrap();
    let opened = ShmBox::<AtomicU64>::sysv_open(SysvKey::Key(key)).unwrap();
    assert_eq!(opened.sysv_id(), created.sysv_id());
    created.sysv_remove().unwrap();

    let err = ShmBox::<AtomicU64>::sysv_open(SysvKey::Key(key)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    opened.store(5, SeqCst);
    assert_eq!(created.load(SeqCst), 5);
    // Fork: the child's inherited attachments still share the removed segment.
    let child = common::fork(|| {
        if opened.load(SeqCst) != 5 {
            return 1;
        }
        created.store(6, SeqCst);
        0
    });
    child.join();
    assert_eq!(opened.load(SeqCst), 6);

    // The key is free again, for an independent segment.
    let again = ShmBox::sysv_create(SysvKey::Key(key), AtomicU64::new(100)).unwrap();
    assert_ne!(again.sysv_id(), created.sysv_id());
    assert_eq!(created.load(SeqCst), 6);
}

#[test]
fn open_or_create_raced_by_eight_processes_initialises_once() {
    const RACERS: usize = 8;
    let (_file, key) = ftok_key("sysv-race", b'O');
    let _rm = RmKey(key);
    // [ready, start, inits, seen...]
    let ctl = ShmBox::new(std::array::from_fn::<AtomicU64, 12, _>(|_| {
        AtomicU64::new(0)
    }))
    .unwrap();
    let children: Vec<_> = (0..RACERS)
        .map(|i| {
            let ctl = &ctl;
            // Fork: each child waits for the shared start flag, then races the others.
            common::fork(move || {
                ctl[0].fetch_add(1, SeqCst);
                if !common::wait_until(STEP, || ctl[1].load(SeqCst) == 1) {
                    return 2;
                }
                let boxed = ShmBox::sysv_open_or_create(SysvKey::Key(key), || {
                    ctl[2].fetch_add(1, SeqCst);
                    AtomicU64::new(500 + i as u64)
                });
                match boxed {
                    Ok(b) => {
                        ctl[3 + i].store(b.load(SeqCst), SeqCst);
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
    assert!(common::wait_until(STEP, || ctl[0].load(SeqCst) == RACERS as u64));
    ctl[1].store(1, SeqCst);
    for child in children {
        child.join();
    }
    assert_eq!(ctl[2].load(SeqCst), 1);
    let seen: Vec<u64> = (0..RACERS).map(|i| ctl[3 + i].load(SeqCst)).collect();
    assert!((500..500 + RACERS as u64).contains(&seen[0]), "{seen:?}");
    assert!(seen.iter().all(|&v| v == seen[0]), "{seen:?}");
    let opened = ShmBox::<AtomicU64>::sysv_open(SysvKey::Key(key)).unwrap();
    assert_eq!(opened.load(SeqCst), seen[0]);
}

#[test]
fn wrong_layout_is_invalid_data() {
    let (_file, key) = ftok_key("sysv-layout", b'L');
    let _rm = RmKey(key);
    let created = ShmBox::sysv_create(SysvKey::Key(key), 7u64).unwrap();
    let id = created.sysv_id().unwrap();
    let err = ShmBox::<i64>::sysv_open(SysvKey::Key(key)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    // The message names what was created and what was asked for.
    assert!(
        err.to_string().contains("holds `u64`") && err.to_string().contains("but `i64`"),
        "{err}"
    );
    let err = ShmBox::<[u32; 2]>::sysv_attach(id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    let err = ShmBox::<shmsync::ShmMutex<u64>>::sysv_attach(id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    let ran = std::cell::Cell::new(false);
    let err = ShmBox::sysv_open_or_create(SysvKey::Key(key), || {
        ran.set(true);
        0i64
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(!ran.get());
    assert_eq!(*ShmBox::<u64>::sysv_attach(id).unwrap(), 7);
}

/// `shmget(IPC_PRIVATE, size)` made by hand: a zero-filled segment without a header.
fn raw_private_segment(size: usize) -> Rmid {
    // SAFETY: shmget only reads its integer arguments.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    Rmid(id)
}

/// A zero-filled `IPC_PRIVATE` segment made by a forked child that has exited and been
/// reaped; returns its id.
fn raw_private_segment_of_a_dead_creator(size: usize) -> i32 {
    let ctl = ShmBox::new(AtomicU64::new(u64::MAX)).unwrap();
    // Fork: the child makes the segment, hands back its id and exits.
    let child = common::fork(|| {
        // SAFETY: shmget only reads its integer arguments.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return 1;
        }
        ctl.store(id as u64, SeqCst);
        0
    });
    child.join();
    ctl.load(SeqCst) as i32
}

#[test]
fn raw_segments_without_a_header_are_invalid_data() {
    let opts = ShmOptions::new().init_timeout(Duration::from_millis(20));
    // Made by a process that is gone: nobody will ever write its header.
    let zeros = Rmid(raw_private_segment_of_a_dead_creator(4096));
    let err = opts.sysv_attach::<u64>(zeros.0).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("not initialised"), "{err}");
    // Made by this live process: it may still write the header, so the opener waits.
    let live = raw_private_segment(4096);
    let err = opts.sysv_attach::<u64>(live.0).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    let small = raw_private_segment(16);
    let err = opts.sysv_attach::<u64>(small.0).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("too small"), "{err}");
    let gone = raw_private_segment(4096);
    let id = gone.0;
    drop(gone);
    let err = opts.sysv_attach::<u64>(id).map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn mode_is_applied_and_other_users_are_refused() {
    let private = ShmBox::sysv_create(SysvKey::Private, AtomicU64::new(3)).unwrap();
    let _rm = Rmid(private.sysv_id().unwrap());
    let (_, mode, size) = region_util::sysv_stat(private.sysv_id().unwrap());
    assert_eq!(mode, 0o600);
    assert!(size >= shmsync::ShmRef::<AtomicU64>::size_for());
    let shared = ShmOptions::new()
        .mode(0o640)
        .sysv_create(SysvKey::Private, 0u8)
        .unwrap();
    let _rm2 = Rmid(shared.sysv_id().unwrap());
    assert_eq!(region_util::sysv_stat(shared.sysv_id().unwrap()).1, 0o640);

    if !region_util::is_root() {
        println!("note: not root, cannot act as another user; permission part skipped");
        return;
    }
    let id = private.sysv_id().unwrap();
    // Fork: the child drops to nobody and must be refused the root-owned 0600 segment.
    let child = common::fork(|| {
        if !region_util::become_nobody() {
            return 3;
        }
        match ShmBox::<AtomicU64>::sysv_attach(id) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => 0,
            Err(e) => {
                eprintln!("{e}");
                1
            }
            Ok(_) => 2,
        }
    });
    child.join();

    // A segment that nobody creates (readable and writable by everyone) is not trusted by
    // root unless asked to.
    let ctl = ShmBox::new(AtomicU64::new(u64::MAX)).unwrap();
    // Fork: the child, as nobody, creates a private segment and hands back its id.
    let child = common::fork(|| {
        if !region_util::become_nobody() {
            return 3;
        }
        let opts = ShmOptions::new().mode(0o666);
        match opts.sysv_create(SysvKey::Private, AtomicU64::new(21)) {
            Ok(b) => {
                ctl.store(b.sysv_id().unwrap() as u64, SeqCst);
                0
            }
            Err(_) => 1,
        }
    });
    child.join();
    let foreign = ctl.load(SeqCst) as i32;
    let _rm3 = Rmid(foreign);
    assert_eq!(region_util::sysv_stat(foreign).0, region_util::NOBODY);
    let err = ShmBox::<AtomicU64>::sysv_attach(foreign).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    // Trusting the owner is not enough for a segment everyone may write.
    let trusted = ShmOptions::new().trust_owner(region_util::NOBODY);
    let err = trusted.sysv_attach::<AtomicU64>(foreign).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let trusted = trusted.allow_group_or_other_write(true);
    assert_eq!(
        trusted
            .sysv_attach::<AtomicU64>(foreign)
            .unwrap()
            .load(SeqCst),
        21
    );
}

/// Regression: only the owner uid was checked, so a segment whose creator handed it to root
/// with `IPC_SET` (keeping write access as its creator) was trusted by root.
#[test]
fn segment_handed_to_a_trusted_owner_by_an_untrusted_creator_is_refused() {
    if !region_util::is_root() {
        println!("note: not root, cannot act as another user; skipped");
        return;
    }
    let ctl = ShmBox::new(AtomicU64::new(u64::MAX)).unwrap();
    // Fork: the child, as nobody, creates a 0600 segment, makes root its owner and hands
    // back its id.
    let child = common::fork(|| {
        if !region_util::become_nobody() {
            return 3;
        }
        let Ok(created) = ShmBox::sysv_create(SysvKey::Private, AtomicU64::new(31)) else {
            return 1;
        };
        let id = created.sysv_id().unwrap();
        if !region_util::set_sysv_owner(id, 0) {
            return 2;
        }
        // As its creator, the child can still write the segment that root now owns.
        match ShmBox::<AtomicU64>::sysv_attach(id) {
            Ok(again) => again.store(32, SeqCst),
            Err(_) => return 4,
        }
        ctl.store(id as u64, SeqCst);
        0
    });
    child.join();
    let id = ctl.load(SeqCst) as i32;
    let _rm = Rmid(id);
    assert_eq!(region_util::sysv_owners(id), (0, region_util::NOBODY));

    let err = ShmBox::<AtomicU64>::sysv_attach(id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("created by uid 65534"), "{err}");
    let trusted = ShmOptions::new().trust_owner(region_util::NOBODY);
    assert_eq!(
        trusted.sysv_attach::<AtomicU64>(id).unwrap().load(SeqCst),
        32
    );
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
    let (_file, raw) = ftok_key("sysv-writable", b'W');
    let _rm = RmKey(raw);
    let key = SysvKey::Key(raw);
    // The creator gets its segment whatever the mode; openers are refused.
    let shared = ShmOptions::new().mode(0o666);
    let created = shared
        .sysv_open_or_create(key, || AtomicU64::new(4))
        .unwrap();
    let id = created.sysv_id().unwrap();
    assert_eq!(region_util::sysv_stat(id).1, 0o666);
    let ran = std::cell::Cell::new(false);
    for err in [
        ShmBox::<AtomicU64>::sysv_open(key).map(drop).unwrap_err(),
        ShmBox::<AtomicU64>::sysv_attach(id).map(drop).unwrap_err(),
        shared
            .sysv_open_or_create(key, || {
                ran.set(true);
                AtomicU64::new(5)
            })
            .map(drop)
            .unwrap_err(),
    ] {
        assert_refused_as_writable(err, "0666");
    }
    assert!(!ran.get());
    let allowed = ShmOptions::new().allow_group_or_other_write(true);
    assert_eq!(allowed.sysv_open::<AtomicU64>(key).unwrap().load(SeqCst), 4);

    for (mode, refused) in [(0o620, true), (0o602, true), (0o640, false), (0o644, false)] {
        let made = ShmOptions::new()
            .mode(mode)
            .sysv_create(SysvKey::Private, 0u64)
            .unwrap();
        let _rm = Rmid(made.sysv_id().unwrap());
        let opened = ShmBox::<u64>::sysv_attach(made.sysv_id().unwrap());
        match opened {
            Err(err) if refused => assert_refused_as_writable(err, &format!("{mode:04o}")),
            Ok(_) if !refused => {}
            other => panic!("mode {mode:o}: {:?}", other.map(drop)),
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
        match ShmBox::<AtomicU64>::sysv_attach(id) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            _ => return 1,
        }
        let allowed = ShmOptions::new().allow_group_or_other_write(true);
        match allowed.sysv_attach::<AtomicU64>(id) {
            Ok(b) if b.load(SeqCst) == 4 => 0,
            _ => 2,
        }
    });
    child.join();
}
