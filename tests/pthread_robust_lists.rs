//! The pthread backend and glibc's robust lists: a guard leaked with `mem::forget` must never
//! make glibc write into memory that was freed or unmapped meanwhile.
//!
//! Every scenario runs in a forked child: memory corruption there is a failed exit status,
//! not a broken test harness.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::mem::size_of;

use common::{fork, Exit};
use memmap2::MmapMut;
use shmsync::pthread::ShmMutex;
use shmsync::{ShmBox, ShmRef};

/// Regression: a heap mutex whose guard was leaked stayed on glibc's robust list after its
/// `Box` was freed, and locking any other pthread mutex wrote a list pointer into the next
/// allocation of the same size.
#[test]
fn a_leaked_guard_of_a_freed_heap_mutex_leaves_the_next_allocation_intact() {
    // Fork: the child reports through its exit code whether the new buffer kept its bytes.
    fork(|| {
        let m = Box::new(ShmMutex::new(0u8));
        let freed_at = &*m as *const ShmMutex<u8> as usize;
        std::mem::forget(m.lock().unwrap());
        drop(m);
        let buf = vec![0xa5u8; size_of::<ShmMutex<u8>>()];
        if buf.as_ptr() as usize != freed_at {
            // The allocator did not hand the freed block out again: nothing is proven.
            return 2;
        }
        let on_stack = ShmMutex::new(0u8);
        *on_stack.lock().unwrap() += 1;
        let in_box = ShmBox::new(ShmMutex::new(0u8)).unwrap();
        *in_box.lock().unwrap() += 1;
        match buf.iter().all(|&b| b == 0xa5) {
            true => 0,
            false => 1,
        }
    })
    .join();
}

/// A raw placement may be unmapped once its `ShmRef` is dropped; with a leaked guard still on
/// a robust list that would be unsound, so the drop aborts the process instead.
#[test]
fn dropping_a_raw_placement_whose_guard_was_leaked_aborts() {
    // Fork: the child is expected to abort; reaching the end is a failure.
    let mut child = fork(|| {
        let mut map = MmapMut::map_anon(4096).unwrap();
        // SAFETY: `map` stays mapped until the child ends, and is used only through `placed`.
        let placed =
            unsafe { ShmRef::init(map.as_mut_ptr(), map.len(), ShmMutex::new(0u32)) }.unwrap();
        std::mem::forget(placed.lock().unwrap());
        drop(placed);
        3
    });
    assert_eq!(child.wait(), Exit::Signal(libc::SIGABRT));
}

/// In a raw placement the mutex is robust: a thread that ends holding it poisons it, and the
/// placement drops quietly once no robust list points into it.
#[test]
fn a_raw_placement_reports_a_thread_that_died_holding_the_lock() {
    // Fork: the child reports through its exit code what the next locker saw.
    fork(|| {
        let mut map = MmapMut::map_anon(4096).unwrap();
        // SAFETY: `map` outlives `placed` and is used only through it.
        let placed =
            unsafe { ShmRef::init(map.as_mut_ptr(), map.len(), ShmMutex::new(7u32)) }.unwrap();
        std::thread::scope(|s| {
            // An explicit join is pthread_join, which returns after the kernel has walked
            // the ended thread's robust list.
            s.spawn(|| std::mem::forget(placed.lock().unwrap()))
                .join()
                .unwrap();
        });
        let code = match placed.lock() {
            Err(poisoned) if **poisoned.get_ref() == 7 => 0,
            Err(_) => 1,
            Ok(_) => 2,
        };
        placed.clear_poison();
        drop(placed);
        drop(map);
        code
    })
    .join();
}
