// A condvar wait re-locks the whole mutex, so it takes the whole guard, never a mapped one.
use shmsync::{ShmCondvar, ShmMutex, ShmMutexGuard};

fn main() {
    let (m, cv) = (ShmMutex::new((0u32, 0u32)), ShmCondvar::new());
    let part = ShmMutexGuard::map(m.lock().unwrap(), |p| &mut p.0);
    let _ = cv.wait(part);
}
