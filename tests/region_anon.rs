//! Anonymous `ShmBox`es are shared with children forked after they were made, both ways.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use shmsync::{ShmBox, ShmSafe};

const STEP: Duration = Duration::from_secs(30);

#[test]
fn child_sees_parent_writes_made_after_the_fork_and_parent_sees_the_childs() {
    let shared = ShmBox::new([AtomicU64::new(0), AtomicU64::new(0)]).unwrap();
    // Fork: the child waits for a value the parent writes only after the fork, then answers.
    let child = common::fork(|| {
        if !common::wait_until(STEP, || shared[0].load(SeqCst) == 11) {
            return 1;
        }
        shared[1].store(22, SeqCst);
        0
    });
    shared[0].store(11, SeqCst);
    assert!(common::wait_until(STEP, || shared[1].load(SeqCst) == 22));
    child.join();
}

#[test]
fn several_children_update_one_counter() {
    const CHILDREN: u64 = 4;
    const ADDS: u64 = 10_000;
    let counter = ShmBox::new(AtomicU64::new(0)).unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            // Fork: each child adds to the shared counter and exits.
            common::fork(|| {
                for _ in 0..ADDS {
                    counter.fetch_add(1, SeqCst);
                }
                0
            })
        })
        .collect();
    for child in children {
        child.join();
    }
    assert_eq!(counter.load(SeqCst), CHILDREN * ADDS);
}

#[derive(ShmSafe)]
#[repr(C)]
struct Board {
    flag: AtomicBool,
    cells: [AtomicU32; 4],
    total: AtomicU64,
}

#[test]
fn derived_struct_is_shared_field_by_field() {
    let board = ShmBox::new(Board {
        flag: AtomicBool::new(false),
        cells: [0, 1, 2, 3].map(AtomicU32::new),
        total: AtomicU64::new(6),
    })
    .unwrap();
    // Fork: the child reads the initial fields and writes others.
    let child = common::fork(|| {
        let sum: u32 = board.cells.iter().map(|c| c.load(SeqCst)).sum();
        if u64::from(sum) != board.total.load(SeqCst) {
            return 1;
        }
        board.cells[3].store(30, SeqCst);
        board.flag.store(true, SeqCst);
        0
    });
    child.join();
    assert!(board.flag.load(SeqCst));
    assert_eq!(board.cells[3].load(SeqCst), 30);
}

#[test]
fn zero_sized_and_page_sized_values_work() {
    let unit = ShmBox::new(()).unwrap();
    assert_eq!(*unit, ());
    let big = ShmBox::new([7u8; 10_000]).unwrap();
    assert!(big.iter().all(|&b| b == 7));
    assert_eq!(big.sysv_id(), None);
    let text = format!("{:?}", ShmBox::new(5u16).unwrap());
    assert!(text.contains("anonymous") && text.contains('5'), "{text}");
}

/// Aligned beyond any page size in use.
#[derive(ShmSafe)]
#[repr(C, align(16384))]
struct OverAligned {
    value: AtomicU64,
}

#[test]
fn values_aligned_beyond_the_page_size_are_aligned_or_refused() {
    // Several boxes, so that at least some mappings do not happen to be 16 KiB-aligned.
    let boxes: Vec<_> = (0..8)
        .map(|i| {
            ShmBox::new(OverAligned {
                value: AtomicU64::new(i),
            })
            .unwrap()
        })
        .collect();
    for (i, b) in boxes.iter().enumerate() {
        assert_eq!((&**b as *const OverAligned as usize) % 16384, 0);
        assert_eq!(b.value.load(SeqCst), i as u64);
    }
    // Named and System V segments are mapped at page-aligned addresses only: refused.
    // SAFETY: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } >= 16384 {
        println!("note: pages of 16 KiB or more; the refusal part is skipped");
        return;
    }
    let name = common::unique_name("over-aligned");
    let value = || OverAligned {
        value: AtomicU64::new(0),
    };
    let kinds = [
        ShmBox::create(&name, value()).map(drop).unwrap_err().kind(),
        ShmBox::<OverAligned>::open(&name)
            .map(drop)
            .unwrap_err()
            .kind(),
        ShmBox::open_or_create(&name, value)
            .map(drop)
            .unwrap_err()
            .kind(),
        ShmBox::sysv_create(shmsync::SysvKey::Private, value())
            .map(drop)
            .unwrap_err()
            .kind(),
        ShmBox::<OverAligned>::sysv_attach(0)
            .map(drop)
            .unwrap_err()
            .kind(),
    ];
    assert_eq!(kinds, [std::io::ErrorKind::InvalidInput; 5]);
    assert!(!std::path::Path::new("/dev/shm")
        .join(name.trim_start_matches('/'))
        .exists());
}
