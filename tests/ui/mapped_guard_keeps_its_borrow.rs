// Nothing borrowed through a mapped guard outlives it: neither a reference the closure tries
// to keep, nor one taken from the mapped guard after it is dropped.
use shmsync::{ShmMutex, ShmMutexGuard};

fn main() {
    let m = ShmMutex::new((0u32, 0u32));
    let mut kept: Option<&mut u32> = None;
    let part = ShmMutexGuard::map(m.lock().unwrap(), |p| {
        kept = Some(&mut p.1);
        &mut p.0
    });
    drop(part);
    *kept.unwrap() = 1;

    let part = ShmMutexGuard::map(m.lock().unwrap(), |p| &mut p.0);
    let first: &u32 = &part;
    drop(part);
    assert_eq!(*first, 0);
}
