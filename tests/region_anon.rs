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
