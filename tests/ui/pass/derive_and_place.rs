use std::sync::atomic::{AtomicU64, Ordering};

use shmsync::{ShmBox, ShmSafe};

#[derive(ShmSafe)]
#[repr(C, align(16))]
struct Aligned {
    count: AtomicU64,
    pair: (u8, [u16; 3]),
}

#[derive(ShmSafe)]
#[repr(C)]
struct Generic<T> {
    head: u32,
    tail: T,
}

#[derive(ShmSafe)]
#[repr(transparent)]
struct Wrapper(u64);

fn main() {
    let b = ShmBox::new(Aligned {
        count: AtomicU64::new(1),
        pair: (2, [3; 3]),
    })
    .unwrap();
    b.count.fetch_add(1, Ordering::Relaxed);
    assert_eq!(b.count.load(Ordering::Relaxed), 2);
    assert_eq!(b.pair.1[2], 3);
    let g = ShmBox::new(Generic { head: 1, tail: Wrapper(5) }).unwrap();
    assert_eq!(g.head + g.tail.0 as u32, 6);
}
