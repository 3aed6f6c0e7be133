// A mapped guard, like the guard it came from, must be unlocked by the thread that locked.
use shmsync::{ShmMutex, ShmMutexGuard};

fn require_send<S: Send>(_: S) {}

fn main() {
    let m = ShmMutex::new((0u32, 0u32));
    let part = ShmMutexGuard::map(m.lock().unwrap(), |p| &mut p.0);
    require_send(part);
}
