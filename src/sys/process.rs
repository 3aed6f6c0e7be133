//! Who this process is, and whether another process is still alive.
//!
//! A process is named by its PID plus its start time (in clock ticks since boot, field 22 of
//! `/proc/<pid>/stat`), so a PID reused by a newer process is not mistaken for the old one.
//! `getpid` is a system call in current glibc, so the identity is cached per process and the
//! cache is cleared in a forked child by a `pthread_atfork` handler.
//!
//! The handler is registered without a `Once`: a `Once` that one thread is running when another
//! thread forks stays "running" forever in the child, and every lock in that child would block
//! on it. Instead the registration state names the registering process, so a child forked
//! mid-registration sees a stranger's PID there and registers for itself.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The largest PID Linux hands out (`PID_MAX_LIMIT`, 2^22); PIDs fit in 22 bits.
pub(crate) const PID_BITS: u32 = 22;
/// Mask of the PID bits.
pub(crate) const PID_MASK: u32 = (1 << PID_BITS) - 1;

/// This process's identity: PID in the low 32 bits, low 32 bits of its start time above.
/// Zero means "not known yet" (in a fresh process or a freshly forked child).
static IDENTITY: AtomicU64 = AtomicU64::new(0);

/// `ATFORK`: no handler registered yet.
const ATFORK_NONE: u32 = 0;
/// `ATFORK`: the handler is registered in this process (and so in every child forked since).
const ATFORK_DONE: u32 = u32::MAX;
/// `ATFORK`: ATFORK_NONE, ATFORK_DONE, or the PID of a process one of whose threads is
/// registering the handler right now.
static ATFORK: AtomicU32 = AtomicU32::new(ATFORK_NONE);

/// A process: its PID and the low 32 bits of its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The process id, below 2^22.
    pub(crate) pid: u32,
    /// The low 32 bits of the process's start time in clock ticks since boot (0 where unknown).
    pub(crate) start: u32,
}

/// What a liveness probe found out about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// No such process, or a zombie: it will never release anything.
    Dead,
    /// A live process with this start time (low 32 bits; 0 where the platform has none).
    Alive { start: u32 },
    /// The probe could not tell (for example `/proc` hides the process).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Unknown,
}

/// The calling process's identity, cached after the first call.
#[inline]
pub(crate) fn current() -> Identity {
    let cached = IDENTITY.load(Ordering::Relaxed);
    if cached != 0 {
        return Identity {
            pid: cached as u32,
            start: (cached >> 32) as u32,
        };
    }
    current_slow()
}

#[cold]
fn current_slow() -> Identity {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    assert!(pid <= PID_MASK, "pid {pid} does not fit in {PID_BITS} bits");
    let start = match probe(pid) {
        Probe::Alive { start } => start,
        _ => 0,
    };
    // Cache only once the fork handler is in place, or a child could inherit this identity.
    if atfork_registered(pid) {
        IDENTITY.store(u64::from(pid) | (u64::from(start) << 32), Ordering::Relaxed);
    }
    Identity { pid, start }
}

/// Registers the fork handler unless it is registered already; returns whether it is. Never
/// waits: while another thread of this process registers it, returns false (do not cache).
fn atfork_registered(pid: u32) -> bool {
    loop {
        let state = ATFORK.load(Ordering::Acquire);
        if state == ATFORK_DONE {
            return true;
        }
        if state == pid {
            return false;
        }
        // ATFORK_NONE, or a parent's PID: a fork caught that registration half-way. => pid.
        if ATFORK
            .compare_exchange(state, pid, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: registers a handler that only stores to an atomic, which is
            // async-signal-safe and valid in the child after fork.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_identity)) };
            assert_eq!(rc, 0, "pthread_atfork failed");
            ATFORK.store(ATFORK_DONE, Ordering::Release);
            return true;
        }
    }
}

extern "C" fn forget_identity() {
    IDENTITY.store(0, Ordering::Relaxed);
}

/// Whether the process `pid` is alive, and since when.
pub(crate) fn probe(pid: u32) -> Probe {
    if pid == 0 || pid > PID_MASK {
        return Probe::Dead;
    }
    probe_os(pid)
}

/// Whether the process named by `who` is certainly dead: gone, a zombie, or its PID now
/// belongs to a process that started at another time.
pub(crate) fn is_dead(who: Identity) -> bool {
    match probe(who.pid) {
        Probe::Dead => true,
        Probe::Alive { start } => who.start != 0 && start != 0 && start != who.start,
        Probe::Unknown => false,
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn probe_os(pid: u32) -> Probe {
    let path = format!("/proc/{pid}/stat");
    match std::fs::read(&path) {
        Ok(stat) => parse_stat(&stat).unwrap_or(Probe::Unknown),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Probe::Dead,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Probe::Dead,
        Err(_) => probe_kill(pid),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn probe_os(pid: u32) -> Probe {
    probe_kill(pid)
}

/// `kill(pid, 0)`: tells gone from present, but not a zombie from a live process.
fn probe_kill(pid: u32) -> Probe {
    // SAFETY: signal 0 performs only the existence and permission check.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
        Probe::Alive { start: 0 }
    } else {
        Probe::Dead
    }
}

/// Reads state (field 3) and start time (field 22) from a `/proc/<pid>/stat` line. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after the last `)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn parse_stat(stat: &[u8]) -> Option<Probe> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" || state == "x" {
        return Some(Probe::Dead);
    }
    // Field 3 was `state`; field 22 is 19 further on.
    let start: u64 = fields.nth(18)?.parse().ok()?;
    Some(Probe::Alive {
        start: (start as u32).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn stat_lines_with_odd_command_names_parse() {
        let line = b"123 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 19 20";
        assert_eq!(parse_stat(line), Some(Probe::Alive { start: 4242 }));
        let zombie = b"7 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99 19";
        assert_eq!(parse_stat(zombie), Some(Probe::Dead));
    }

    #[test]
    fn a_child_forked_while_the_fork_handler_was_registering_does_not_hang() {
        // Pretend a thread of some parent was registering when this process was forked.
        let me = current();
        let saved = ATFORK.swap(me.pid.wrapping_add(1) & PID_MASK, Ordering::AcqRel);
        assert!(atfork_registered(me.pid));
        assert_eq!(ATFORK.load(Ordering::Acquire), ATFORK_DONE);
        let _ = saved;
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        let me = current();
        assert!(matches!(probe(me.pid), Probe::Alive { .. }));
        assert!(!is_dead(me));
        assert_eq!(probe(0), Probe::Dead);
    }
}
