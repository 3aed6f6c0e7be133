//! The anonymous `ShmBox` shares memory with a forked child, both ways.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use shmsync::ShmBox;

#[test]
fn forked_child_and_parent_see_each_others_writes() {
    let shared = ShmBox::new([AtomicU64::new(0), AtomicU64::new(0)]).unwrap();
    shared[0].store(7, Ordering::Release);
    // Fork: the child checks the parent's write, then writes its own and exits.
    let child = common::fork(|| {
        if shared[0].load(Ordering::Acquire) != 7 {
            return 1;
        }
        shared[1].store(99, Ordering::Release);
        0
    });
    child.join();
    assert_eq!(shared[1].load(Ordering::Acquire), 99);
}
