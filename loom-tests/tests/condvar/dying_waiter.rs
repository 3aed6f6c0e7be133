//! Two waiters for "go" on one condvar, one of which dies as soon as a notification wakes it,
//! before re-taking the mutex; shared by the condvar models and the seeded-bug model.

use loom::sync::Arc;
use loom::thread;
use shmsync::futex::{__test_hooks as hooks, ShmCondvar, ShmMutex};

/// "go" under a mutex, and the condvar its waiters sleep on.
pub struct Go {
    pub go: ShmMutex<bool>,
    pub cv: ShmCondvar,
}

/// A survivor waits for "go"; a victim waits too and dies once woken; a notifier says "go"
/// with one `notify_one`. Whichever of the two that notification woke, the survivor returns:
/// a lost notification is a deadlock, which loom reports.
pub fn a_notification_spent_on_a_dying_waiter() {
    let s = Arc::new(Go {
        go: ShmMutex::new(false),
        cv: ShmCondvar::new(),
    });
    let victim = {
        let s = s.clone();
        thread::spawn(move || {
            let g = s.go.lock().unwrap();
            if !*g {
                hooks::wait_woken_then(&s.cv, g, shmsync::loom::die);
            }
        })
    };
    let survivor = {
        let s = s.clone();
        thread::spawn(move || {
            let g = s.cv.wait_while(s.go.lock().unwrap(), |go| !*go).unwrap();
            assert!(*g);
        })
    };
    *s.go.lock().unwrap() = true;
    s.cv.notify_one();
    survivor.join().unwrap();
    // The victim may still sleep, if the notification went to the survivor.
    s.cv.notify_all();
    victim.join().unwrap();
}
