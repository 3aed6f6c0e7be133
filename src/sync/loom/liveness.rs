//! A simulated process table: each loom thread of a model is one process.
//!
//! A thread gets its PID (1, 2, ...; in the order threads first use a primitive) on first use;
//! its token is that PID. [`die`] marks it dead for the liveness verdicts, and wakes every sleeper of the lock's
//! liveness-check schedule so that it probes again.

use std::cell::Cell;
use std::sync::atomic::AtomicU32;

use crate::sync::Ordering;

pub(crate) use crate::sys::liveness::{Me, Verdict, TOKEN_MASK};

loom::lazy_static! {
    /// The last PID handed out in this execution of the model.
    static ref LAST_PID: AtomicU32 = AtomicU32::new(0);
}

loom::thread_local! {
    /// The calling thread's PID; 0 until it first uses a primitive.
    static ME: Cell<u32> = Cell::new(0);
    /// Whether the calling thread's process has died.
    static DIED: Cell<bool> = Cell::new(false);
}

/// The calling thread's PID, handed out on first use.
pub(crate) fn pid() -> u32 {
    ME.with(|me| {
        if me.get() == 0 {
            let pid = LAST_PID.fetch_add(1, Ordering::Relaxed) + 1;
            assert!(pid < 64, "a model has at most 63 simulated processes");
            me.set(pid);
        }
        me.get()
    })
}

/// The calling process, which must be alive.
pub(crate) fn me() -> Me {
    let pid = pid();
    assert!(
        !DIED.with(Cell::get),
        "simulated process {pid} used a shmsync primitive after shmsync::loom::die"
    );
    Me { token: pid, pid }
}

/// The calling thread's process dies; it must not use a primitive again.
pub(crate) fn die() {
    DIED.with(|died| died.set(true));
    super::word::announce_death(pid());
}

/// Whether the process whose token is `token` has died.
pub(crate) fn judge(token: u32) -> Verdict {
    let pid = token & TOKEN_MASK;
    if pid != 0 && pid < 64 && super::word::with_table(|t| t.dead) & (1 << pid) != 0 {
        Verdict::Dead
    } else {
        Verdict::Alive
    }
}

/// [`judge`]: the model has no clock to memoise with.
pub(crate) fn judge_recent(token: u32) -> Verdict {
    judge(token)
}
