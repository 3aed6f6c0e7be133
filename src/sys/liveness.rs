//! Who owns a lock, and whether that owner is certainly dead: the one place that decides.
//!
//! A process that takes a shmsync lock writes its *token* into the lock word: 30 bits that
//! name the process without naming its PID. On Linux a token is a byte offset (a *slot*) in
//! the liveness registry, a file every process of the machine opens by one fixed name
//! (`/dev/shm/shmsync-liveness-v1`). The process holds an open-file-description lock
//! (`F_OFD_SETLK`) on that one byte for as long as it lives. The kernel drops the lock when
//! the description's last file descriptor closes: when the process dies (however it dies),
//! and when it `exec`s (the descriptor is close-on-exec), but never because of a PID
//! namespace, a missing `/proc` or `hidepid`. Another process asks the kernel with
//! `F_OFD_GETLK` whether anybody still holds the byte: nobody means the owner is gone.
//!
//! So a verdict of [`Verdict::Dead`] always rests on the kernel's word. Whenever no kernel
//! object can answer, the owner counts as alive:
//!
//! - a token with [`UNVERIFIED`] set belongs to a process that could not claim a slot (no
//!   registry, a registry other than the one its parent used, every slot tried was taken);
//!   it is never judged dead;
//! - a process without a registry judges every owner alive;
//! - an error from `F_OFD_GETLK` means alive.
//!
//! Two processes that open *different* registries (another `/dev/shm`, in another mount
//! namespace) must never judge each other's tokens: the segment header records the creator's
//! registry ([`registry_id`]) and opening refuses a segment made under another one.
//!
//! A forked child shares its parent's open file description, and with it the parent's slot.
//! A `pthread_atfork` child handler closes the child's copy at once (so the parent's death is
//! still seen while the child lives) and forgets the identity; the child opens the registry
//! anew and claims its own slot on first use, and uses it only if the file it opened is the
//! same one (device and inode) its parent used.
//!
//! Slots are picked at random among 2^29; a slot freed by a dead process and claimed again
//! before a waiter looks would make the dead owner look alive (a delay, never a robbery), with
//! a chance of one in half a billion per new process.
//!
//! Elsewhere than Linux there are no OFD locks: the token is [`UNVERIFIED`] plus the PID, and
//! an owner counts as dead only when `kill(pid, 0)` says no such process exists.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Tokens fit in the low 30 bits of a word; the two high bits are the caller's flags.
pub(crate) const TOKEN_MASK: u32 = (1 << 30) - 1;
/// Set in a token that no kernel object backs: its owner is never judged dead.
pub(crate) const UNVERIFIED: u32 = 1 << 29;
/// The slot bits of a verified token.
const SLOT_MASK: u32 = UNVERIFIED - 1;

/// The calling process as an owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Me {
    /// The token to write into lock words: nonzero, within [`TOKEN_MASK`].
    pub(crate) token: u32,
    /// The PID in this process's own namespace; for diagnostics only.
    pub(crate) pid: u32,
}

/// What the kernel says about the owner named by a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Alive, or nothing can tell.
    Alive,
    /// Certainly gone: the kernel released its liveness lock (death or exec).
    Dead,
}

/// The registry a process judges tokens against, as recorded in segment headers: the device
/// and inode of the registry file. All zero for a process without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RegistryId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl RegistryId {
    /// The id of a process that has no registry.
    pub(crate) const NONE: RegistryId = RegistryId { dev: 0, ino: 0 };
}

/// The cached identity: token in the low 32 bits, PID above; 0 until known (in a fresh
/// process and in a freshly forked child).
static ME: AtomicU64 = AtomicU64::new(0);
/// The registry's file descriptor in this process, or -1.
static REGISTRY_FD: AtomicI32 = AtomicI32::new(-1);
/// The registry file's device and inode, once a process of this fork family opened it; a
/// child only accepts the same file.
static REGISTRY_DEV: AtomicU64 = AtomicU64::new(0);
static REGISTRY_INO: AtomicU64 = AtomicU64::new(0);

/// `ATFORK`: no handler registered yet.
const ATFORK_NONE: u32 = 0;
/// `ATFORK`: the handler is registered in this process (and so in every child forked since).
const ATFORK_DONE: u32 = u32::MAX;
/// `ATFORK`: ATFORK_NONE, ATFORK_DONE, or the PID of a process one of whose threads is
/// registering the handler right now. No `Once`: a `Once` that one thread is running when
/// another thread forks stays "running" forever in the child.
static ATFORK: AtomicU32 = AtomicU32::new(ATFORK_NONE);

/// The calling process's identity: one relaxed load once known.
#[inline]
pub(crate) fn me() -> Me {
    let cached = ME.load(Ordering::Relaxed);
    if cached != 0 {
        return Me {
            token: cached as u32,
            pid: (cached >> 32) as u32,
        };
    }
    me_slow()
}

#[cold]
fn me_slow() -> Me {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    if !atfork_registered(pid) {
        // Another thread of this process is registering the fork handler: do not cache (a
        // child forked now could inherit the cache), and claim nothing (the slot would leak).
        return Me {
            token: unverified(pid),
            pid,
        };
    }
    let token = os::claim().unwrap_or_else(|| unverified(pid));
    let mine = u64::from(token) | (u64::from(pid) << 32);
    match ME.compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Me { token, pid },
        Err(winner) => {
            // Another thread claimed first: use its token, free ours.
            os::release(token);
            Me {
                token: winner as u32,
                pid: (winner >> 32) as u32,
            }
        }
    }
}

/// The token of a process that has no slot: never judged dead.
fn unverified(pid: u32) -> u32 {
    UNVERIFIED | (pid & SLOT_MASK).max(1)
}

/// Whether the owner named by `token` is certainly dead. Never says so for the calling
/// process, for an [`UNVERIFIED`] token, or when the kernel cannot be asked.
pub(crate) fn judge(token: u32) -> Verdict {
    let token = token & TOKEN_MASK;
    if token == 0 || token == me().token {
        return Verdict::Alive;
    }
    if token & UNVERIFIED != 0 {
        return os::judge_unverified(token & SLOT_MASK);
    }
    os::judge_slot(token)
}

/// Whether the process that has PID `pid` *in this process's namespace* (a PID the kernel
/// translated for us, such as a System V segment's `shm_cpid`; 0 when it has no number here)
/// is certainly gone: the kernel has no such process, or it has exited (a zombie).
pub(crate) fn judge_visible_pid(pid: u32) -> Verdict {
    if pid == 0 || pid > i32::MAX as u32 {
        return Verdict::Alive;
    }
    os::judge_visible_pid(pid)
}

// The model checker stands in its own `judge_recent` (see `crate::sync`).
crate::sync::native_only! {
    /// How long [`judge_recent`] trusts a verdict that found an owner alive.
    const TRUST_ALIVE: std::time::Duration = std::time::Duration::from_millis(1);

    std::thread_local! {
        /// The token this thread last found alive, and until when to believe it.
        static LAST_ALIVE: core::cell::Cell<Option<(u32, crate::sys::time::Deadline)>> =
            const { core::cell::Cell::new(None) };
    }

    /// [`judge`] for a loop of `try_lock`s: an owner this thread found alive less than 1 ms ago
    /// is not asked about again, so such a loop costs a clock read per call and one system call
    /// per millisecond (a death is then seen up to 1 ms late).
    pub(crate) fn judge_recent(token: u32) -> Verdict {
        use crate::sys::time::Deadline;
        let token = token & TOKEN_MASK;
        let now = Deadline::now();
        if let Some((t, until)) = LAST_ALIVE.with(core::cell::Cell::get) {
            if t == token && now < until {
                return Verdict::Alive;
            }
        }
        let verdict = judge(token);
        if verdict == Verdict::Alive {
            let until = now.plus(TRUST_ALIVE);
            LAST_ALIVE.with(|last| last.set(until.map(|u| (token, u))));
        }
        verdict
    }
}

/// The registry this process judges tokens against (claiming a slot first if needed).
pub(crate) fn registry_id() -> RegistryId {
    if me().token & UNVERIFIED != 0 {
        return RegistryId::NONE;
    }
    RegistryId {
        dev: REGISTRY_DEV.load(Ordering::Relaxed),
        ino: REGISTRY_INO.load(Ordering::Relaxed),
    }
}

/// Whether this process may share primitives with processes that judge tokens against
/// `theirs`: yes unless both have a registry and they differ.
pub(crate) fn compatible(theirs: RegistryId) -> bool {
    let mine = registry_id();
    mine == RegistryId::NONE || mine == theirs
}

/// Registers the fork handler unless it is registered already; returns whether it is. Never
/// waits: while another thread of this process registers it, returns false.
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
            // SAFETY: registers a handler that only closes a descriptor and stores to
            // atomics, which is async-signal-safe and valid in the child after fork.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
            assert_eq!(rc, 0, "pthread_atfork failed");
            ATFORK.store(ATFORK_DONE, Ordering::Release);
            return true;
        }
    }
}

/// In a forked child: drop the parent's registry description and identity.
extern "C" fn forget_in_child() {
    ME.store(0, Ordering::Relaxed);
    let fd = REGISTRY_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` is the registry descriptor this library opened and nobody else uses;
        // closing the child's copy leaves the parent's lock in place (the parent still has
        // the description open).
        unsafe { libc::close(fd) };
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod os {
    use super::*;
    use crate::sys::ofd;
    use std::ffi::CStr;

    /// One OFD lock call on the byte `slot`; the lock type the kernel reports back.
    fn ofd_lock(fd: i32, cmd: i32, kind: i16, slot: u32) -> Result<i16, i32> {
        ofd::lock(fd, cmd, kind, i64::from(slot))
    }

    /// The registry's `shm_open` name.
    const REGISTRY_NAME: &CStr = c"/shmsync-liveness-v1";
    /// Random slots tried before giving up.
    const CLAIM_TRIES: u32 = 64;
    /// Attempts to open a registry that another process is just creating (its mode is set
    /// right after creation).
    const OPEN_TRIES: u32 = 50;

    /// Opens the registry if needed and claims a slot; `None` when either fails.
    pub(super) fn claim() -> Option<u32> {
        let fd = registry_fd()?;
        let mut seed = random_seed();
        for _ in 0..CLAIM_TRIES {
            seed = splitmix(seed);
            let slot = (seed as u32 & SLOT_MASK).max(1);
            match ofd_lock(fd, libc::F_OFD_SETLK, libc::F_WRLCK as i16, slot) {
                Ok(_) => return Some(slot),
                Err(e) if e == libc::EAGAIN || e == libc::EACCES => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Gives back a slot claimed by a thread that lost the race to publish its identity.
    pub(super) fn release(token: u32) {
        let fd = REGISTRY_FD.load(Ordering::Relaxed);
        if token & UNVERIFIED == 0 && fd >= 0 {
            let _ = ofd_lock(fd, libc::F_OFD_SETLK, libc::F_UNLCK as i16, token);
        }
    }

    /// Asks the kernel whether anybody holds `slot`.
    pub(super) fn judge_slot(slot: u32) -> Verdict {
        let fd = REGISTRY_FD.load(Ordering::Relaxed);
        if fd < 0 {
            return Verdict::Alive;
        }
        match ofd_lock(fd, libc::F_OFD_GETLK, libc::F_WRLCK as i16, slot) {
            Ok(kind) if kind == libc::F_UNLCK as i16 => Verdict::Dead,
            _ => Verdict::Alive,
        }
    }

    /// An unverified token names no kernel object: alive.
    pub(super) fn judge_unverified(_pid: u32) -> Verdict {
        Verdict::Alive
    }

    /// `pidfd_open`: ESRCH means no such process; a readable pidfd means it has exited.
    pub(super) fn judge_visible_pid(pid: u32) -> Verdict {
        // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ESRCH) => Verdict::Dead,
                _ => Verdict::Alive,
            };
        }
        let fd = fd as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd; a zero timeout never blocks.
        let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
        // SAFETY: `fd` was opened above and is not shared.
        unsafe { libc::close(fd) };
        if ready == 1 && pfd.revents & libc::POLLIN != 0 {
            Verdict::Dead
        } else {
            Verdict::Alive
        }
    }

    /// The registry descriptor, opening it on first use.
    fn registry_fd() -> Option<i32> {
        let fd = REGISTRY_FD.load(Ordering::Acquire);
        if fd >= 0 {
            return Some(fd);
        }
        let fd = open_registry()?;
        match REGISTRY_FD.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(fd),
            Err(winner) => {
                // SAFETY: `fd` was opened just above and never shared.
                unsafe { libc::close(fd) };
                Some(winner)
            }
        }
    }

    /// Opens (creating if needed, mode 0666) the registry; checks that it is the file this
    /// fork family used before, if any.
    fn open_registry() -> Option<i32> {
        let flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        let mut fd = -1;
        for attempt in 0..OPEN_TRIES {
            // SAFETY: the name is a valid C string; shm_open has no other preconditions.
            fd = unsafe { libc::shm_open(REGISTRY_NAME.as_ptr(), flags | libc::O_CREAT, 0o666) };
            if fd >= 0 {
                break;
            }
            let err = std::io::Error::last_os_error().raw_os_error();
            if err != Some(libc::EACCES) || attempt + 1 == OPEN_TRIES {
                return None;
            }
            // A creator has not widened the mode yet.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // SAFETY: fstat writes into a zeroed, properly sized struct.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: `fd` is open; `st` is writable.
        if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
            // SAFETY: `fd` was opened above and is not shared.
            unsafe { libc::close(fd) };
            return None;
        }
        // Whoever created it widens the mode past the umask; harmless when it is not ours.
        // SAFETY: `fd` is open.
        unsafe { libc::fchmod(fd, 0o666) };
        let (dev, ino) = (st.st_dev, st.st_ino);
        let known = REGISTRY_INO.load(Ordering::Relaxed);
        if known != 0 && (known != ino || REGISTRY_DEV.load(Ordering::Relaxed) != dev) {
            // Another mount namespace's registry than the parent's: slots there mean
            // nothing to the processes this one shares memory with.
            // SAFETY: `fd` was opened above and is not shared.
            unsafe { libc::close(fd) };
            return None;
        }
        REGISTRY_DEV.store(dev, Ordering::Relaxed);
        REGISTRY_INO.store(ino, Ordering::Relaxed);
        Some(fd)
    }

    /// 64 random bits from the kernel, or a mix of time and PID if it has none to give.
    fn random_seed() -> u64 {
        let mut seed = 0u64;
        // SAFETY: getrandom writes at most 8 bytes into `seed`.
        let n = unsafe { libc::getrandom((&mut seed as *mut u64).cast(), 8, libc::GRND_NONBLOCK) };
        if n == 8 {
            return seed;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u64;
        splitmix(nanos ^ (pid << 40))
    }

    /// One step of splitmix64.
    fn splitmix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod os {
    use super::*;

    /// No OFD locks here: every token is unverified.
    pub(super) fn claim() -> Option<u32> {
        None
    }

    pub(super) fn release(_token: u32) {}

    pub(super) fn judge_slot(_slot: u32) -> Verdict {
        Verdict::Alive
    }

    pub(super) fn judge_visible_pid(pid: u32) -> Verdict {
        judge_unverified(pid)
    }

    /// `kill(pid, 0)`: ESRCH means no such process (these systems have no PID namespaces).
    pub(super) fn judge_unverified(pid: u32) -> Verdict {
        // SAFETY: signal 0 performs only the existence and permission check.
        let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
        if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            Verdict::Dead
        } else {
            Verdict::Alive
        }
    }
}

/// A verified token whose slot nobody holds, for tests that play a dead owner.
#[cfg(test)]
pub(crate) fn unheld_token() -> u32 {
    let mine = me().token;
    (2..SLOT_MASK)
        .map(|n| (mine.wrapping_add(n.wrapping_mul(7919)) & SLOT_MASK).max(1))
        .find(|&t| t != mine && judge(t) == Verdict::Dead)
        .expect("a free slot")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_has_a_verified_token() {
        let me = me();
        assert_ne!(me.token, 0);
        assert_eq!(me.token & !TOKEN_MASK, 0);
        assert_eq!(judge(me.token), Verdict::Alive);
        #[cfg(target_os = "linux")]
        assert_eq!(me.token & UNVERIFIED, 0, "no slot in the registry");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_slot_nobody_holds_is_dead_and_unverified_tokens_are_alive() {
        let free = unheld_token();
        assert_ne!(free & UNVERIFIED, UNVERIFIED);
        assert_eq!(judge(UNVERIFIED | 12345), Verdict::Alive);
        assert_eq!(judge(0), Verdict::Alive);
    }

    #[test]
    fn a_child_forked_while_the_fork_handler_was_registering_does_not_hang() {
        let pid = me().pid;
        let saved = ATFORK.swap(pid.wrapping_add(1), Ordering::AcqRel);
        assert!(atfork_registered(pid));
        assert_eq!(ATFORK.load(Ordering::Acquire), ATFORK_DONE);
        let _ = saved;
    }
}
