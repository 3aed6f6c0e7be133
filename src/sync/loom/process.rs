//! A simulated process table: each loom thread of a model is one process.
//!
//! A thread gets its PID (1, 2, ...; in the order threads first use a primitive) on first use;
//! [`die`] marks it dead for the liveness probes, and wakes every sleeper of the lock's
//! liveness-check schedule so that it probes again.

use std::cell::Cell;
use std::sync::atomic::AtomicU32;

use crate::sync::Ordering;

/// PIDs fit in this many bits (as on Linux).
pub(crate) const PID_BITS: u32 = 22;

/// A process: its PID and the low 32 bits of its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) pid: u32,
    pub(crate) start: u32,
}

/// What a liveness probe found out about a process.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    Dead,
    Alive { start: u32 },
    Unknown,
}

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

/// The simulated start time of process `pid`.
fn start_of(pid: u32) -> u32 {
    1000 + 37 * pid
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
pub(crate) fn current() -> Identity {
    let pid = pid();
    assert!(
        !DIED.with(Cell::get),
        "simulated process {pid} used a shmsync primitive after shmsync::loom::die"
    );
    Identity {
        pid,
        start: start_of(pid),
    }
}

/// The calling thread's process dies; it must not use a primitive again.
pub(crate) fn die() {
    DIED.with(|died| died.set(true));
    super::futex::announce_death(pid());
}

/// Whether process `pid` is alive.
pub(crate) fn probe(pid: u32) -> Probe {
    if pid == 0 || pid >= 64 || super::futex::with_table(|t| t.dead) & (1 << pid) != 0 {
        Probe::Dead
    } else {
        Probe::Alive {
            start: start_of(pid),
        }
    }
}
