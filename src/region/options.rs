//! `ShmOptions`: how named and System V segments are created and opened.

use std::io;
use std::time::Duration;

use super::fill::Moved;
use super::{posix, sysv, ShmBox, SysvKey};
use crate::ShmSafe;

/// Settings for creating and opening segments: permission bits, which owners and writers to
/// trust, and how long to wait for another process that is still initialising a segment.
///
/// The `ShmBox` shortcuts ([`ShmBox::create`], [`ShmBox::open`], ...) use the defaults: mode
/// `0o600`, trust segments owned (and, for System V, created) by this user or root, refuse
/// segments that their group or other users may write, wait up to 5 s.
///
/// # Examples
///
/// A segment shared with a group: its creator picks the mode, and every process that opens it
/// accepts group writers explicitly.
///
/// ```
/// use std::time::Duration;
/// use shmsync::{ShmBox, ShmOptions};
///
/// let name = format!("/shmsync-doc-options-{}", std::process::id());
/// let opts = ShmOptions::new()
///     .mode(0o660)
///     .allow_group_or_other_write(true)
///     .init_timeout(Duration::from_secs(1));
/// let created: ShmBox<u64> = opts.create(&name, 7).unwrap();
/// let opened: ShmBox<u64> = opts.open(&name).unwrap();
/// assert_eq!(*opened, 7);
/// ShmBox::<u64>::unlink(&name).unwrap();
/// # drop(created);
/// ```
#[derive(Clone, Debug)]
pub struct ShmOptions {
    pub(crate) mode: u32,
    pub(crate) trusted_owners: Vec<u32>,
    pub(crate) shared_write: bool,
    pub(crate) init_timeout: Duration,
}

impl Default for ShmOptions {
    fn default() -> Self {
        ShmOptions::new()
    }
}

impl ShmOptions {
    /// The defaults: mode `0o600`, trust only this user and root, refuse segments that their
    /// group or other users may write, a 5 s init timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = shmsync::ShmOptions::new();
    /// # let _ = opts;
    /// ```
    pub fn new() -> Self {
        ShmOptions {
            mode: 0o600,
            trusted_owners: Vec::new(),
            shared_write: false,
            init_timeout: Duration::from_secs(5),
        }
    }

    /// Permission bits for segments this process creates (applied exactly, whatever the
    /// umask), for example `0o660` to share with a group.
    ///
    /// A mode that lets the group or other users write (`0o020` or `0o002`) does not stop the
    /// creator, but every process that opens the segment then needs
    /// [`allow_group_or_other_write`](Self::allow_group_or_other_write).
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = shmsync::ShmOptions::new().mode(0o660);
    /// # let _ = opts;
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Also trust segments owned by user `uid` when opening. By default a segment owned by
    /// another user (except root) is refused with `PermissionDenied`, since its owner could
    /// have prepared its contents. A System V segment must be trusted under both its owner
    /// (`shm_perm.uid`) and its creator (`shm_perm.cuid`): a creator can hand the segment to
    /// another owner with `IPC_SET` and still write it.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = shmsync::ShmOptions::new().trust_owner(1000);
    /// # let _ = opts;
    /// ```
    pub fn trust_owner(mut self, uid: u32) -> Self {
        self.trusted_owners.push(uid);
        self
    }

    /// Accept, when opening, segments that their group or other users may write (mode bits
    /// `0o020` or `0o002`). By default such a segment is refused with `PermissionDenied`:
    /// anyone who can write a segment can forge its bytes, including the state of the locks
    /// in it (a mutex held by a process that never unlocks, poison, a torn value), so every
    /// such writer would have to be trusted as much as its owner.
    ///
    /// Creating is not affected: a segment made with a group- or other-writable
    /// [`mode`](Self::mode) is handed to its creator, and every process that opens it needs
    /// this setting, including an `open_or_create` that finds it already made.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = shmsync::ShmOptions::new().mode(0o660).allow_group_or_other_write(true);
    /// # let _ = opts;
    /// ```
    pub fn allow_group_or_other_write(mut self, allow: bool) -> Self {
        self.shared_write = allow;
        self
    }

    /// How long `open` and `open_or_create` wait for a live creator that is still
    /// initialising a segment before failing with `TimedOut`. A creator that died is reported
    /// at once as `InvalidData`, even one that died before it wrote the header.
    ///
    /// A named segment's creator holds an `flock` on it from its `O_EXCL` open until the value
    /// is ready, and a System V segment records its creator's PID (`shm_cpid`); that is how
    /// an opener tells a slow creator from a dead one. Two cases still wait for the whole
    /// timeout: a System V creator whose PID was reused by another process, and a POSIX
    /// creator that died after a child it forked during `init` inherited the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = shmsync::ShmOptions::new().init_timeout(Duration::from_millis(500));
    /// # let _ = opts;
    /// ```
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// Creates the POSIX segment `name` holding `value`; fails if it exists.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad name, `AlreadyExists`, `PermissionDenied`, or the OS error.
    ///
    /// # Examples
    ///
    /// See [`ShmOptions`].
    pub fn create<T: ShmSafe>(&self, name: &str, value: T) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::create")?;
        posix::create(self, name, Moved(|| value))
    }

    /// Opens the existing POSIX segment `name` and validates its header for a `T`.
    ///
    /// # Errors
    ///
    /// `NotFound` (also when the creator gave up and unlinked it while this call waited),
    /// `PermissionDenied` (mode, an untrusted owner, or a segment that its group or other
    /// users may write), `InvalidInput` for a bad name or a name that is a directory,
    /// `InvalidData` for a segment that does not hold a `T` or whose creator died before it
    /// was ready, `TimedOut` when its live creator did not finish within the init timeout.
    ///
    /// # Examples
    ///
    /// See [`ShmOptions`].
    pub fn open<T: ShmSafe>(&self, name: &str) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::open")?;
        posix::open(self, name)
    }

    /// Opens the POSIX segment `name`, or creates it with `init()` if it does not exist.
    /// Among racing processes `init` runs exactly once, and every caller sees its value.
    ///
    /// A segment left behind by a creator that died before it was ready (at any step: after
    /// sizing it, or inside `init`) is an `InvalidData` error that says to unlink it; it is
    /// never unlinked or re-initialised here, since another process may be inspecting or
    /// recovering it at the same moment. Call [`ShmBox::unlink`] and try again once you know
    /// no one else uses it.
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create) and [`open`](Self::open).
    ///
    /// # Panics
    ///
    /// When `init` panics, the panic goes on to the caller after the name is unlinked, so
    /// that no half-made segment stays behind: racers that had already opened it start again
    /// (`open_or_create`) or fail with `NotFound` (`open`).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("/shmsync-doc-ooc-{}", std::process::id());
    /// let opts = shmsync::ShmOptions::new();
    /// let a = opts.open_or_create(&name, || 1u32).unwrap();
    /// let b = opts.open_or_create(&name, || 2u32).unwrap();
    /// assert_eq!((*a, *b), (1, 1));
    /// shmsync::ShmBox::<u32>::unlink(&name).unwrap();
    /// ```
    pub fn open_or_create<T: ShmSafe>(
        &self,
        name: &str,
        init: impl FnOnce() -> T,
    ) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::open_or_create")?;
        posix::open_or_create(self, name, Moved(init))
    }

    /// Creates a System V segment for `key` holding `value` (`IPC_CREAT | IPC_EXCL`, or a new
    /// private segment for [`SysvKey::Private`]).
    ///
    /// # Errors
    ///
    /// `AlreadyExists`, `PermissionDenied`, or the OS error of `shmget`/`shmat`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmOptions, SysvKey};
    /// let b = ShmOptions::new().mode(0o600).sysv_create(SysvKey::Private, 5u64).unwrap();
    /// assert_eq!(*b, 5);
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_create<T: ShmSafe>(&self, key: SysvKey, value: T) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::sysv_create")?;
        sysv::create(self, key, Moved(|| value))
    }

    /// Attaches the existing System V segment for `key` and validates it for a `T`.
    ///
    /// # Errors
    ///
    /// `NotFound`, `PermissionDenied` (mode, an untrusted owner or creator, or a segment that
    /// its group or other users may write), `InvalidInput` for [`SysvKey::Private`] (which names no
    /// existing segment; use [`sysv_attach`](Self::sysv_attach)), `InvalidData`, `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmOptions, SysvKey};
    /// let key = SysvKey::Key((0x5348_0000 | (std::process::id() & 0xffff)) as _);
    /// let opts = ShmOptions::new();
    /// let created = opts.sysv_create(key, 9u32).unwrap();
    /// assert_eq!(*opts.sysv_open::<u32>(key).unwrap(), 9);
    /// created.sysv_remove().unwrap();
    /// ```
    pub fn sysv_open<T: ShmSafe>(&self, key: SysvKey) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::sysv_open")?;
        sysv::open(self, key)
    }

    /// Opens the System V segment for `key`, or creates it with `init()`; among racing
    /// processes `init` runs exactly once.
    ///
    /// A segment whose creator died before it was ready (after `shmget`, or inside `init`) is
    /// an `InvalidData` error, as for [`open_or_create`](Self::open_or_create); remove it
    /// (`ipcrm`, or [`ShmBox::sysv_remove`] of a box attached to it) once no one else uses it.
    ///
    /// # Errors
    ///
    /// As for [`sysv_create`](Self::sysv_create) and [`sysv_open`](Self::sysv_open).
    ///
    /// # Panics
    ///
    /// When `init` panics, the panic goes on to the caller after the segment is removed
    /// (`IPC_RMID`): racers that had already attached it start again or fail with `NotFound`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmOptions, SysvKey};
    /// let key = SysvKey::Key((0x5349_0000 | (std::process::id() & 0xffff)) as _);
    /// let b = ShmOptions::new().sysv_open_or_create(key, || 3u8).unwrap();
    /// assert_eq!(*b, 3);
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_open_or_create<T: ShmSafe>(
        &self,
        key: SysvKey,
        init: impl FnOnce() -> T,
    ) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::sysv_open_or_create")?;
        sysv::open_or_create(self, key, Moved(init))
    }

    /// Attaches the System V segment with id `shmid` (as printed by `ipcs -m`, or passed on
    /// from a process that created an `IPC_PRIVATE` segment) and validates it for a `T`.
    ///
    /// # Errors
    ///
    /// `NotFound` (`EINVAL`/`EIDRM` from `shmctl`), `PermissionDenied` (as for
    /// [`sysv_open`](Self::sysv_open)), `InvalidData`, `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmOptions, SysvKey};
    /// let opts = ShmOptions::new();
    /// let created = opts.sysv_create(SysvKey::Private, 11u16).unwrap();
    /// let id = created.sysv_id().unwrap();
    /// assert_eq!(*opts.sysv_attach::<u16>(id).unwrap(), 11);
    /// created.sysv_remove().unwrap();
    /// ```
    pub fn sysv_attach<T: ShmSafe>(&self, shmid: i32) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::sysv_attach")?;
        sysv::attach(self, shmid)
    }

    /// Whether a segment owned by `uid` may be trusted.
    fn trusts(&self, uid: u32) -> bool {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        uid == me || uid == 0 || self.trusted_owners.contains(&uid)
    }

    /// Refuses a segment owned by `uid` unless that user is trusted; `role` says how the
    /// segment belongs to it ("owned", "created").
    pub(crate) fn check_owner(&self, uid: u32, role: &str, what: &str) -> io::Result<()> {
        if self.trusts(uid) {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{what}: {role} by uid {uid}, which is neither this user nor trusted \
                 (see ShmOptions::trust_owner)"
            ),
        ))
    }

    /// Refuses a segment whose permission bits `mode` let its group or other users write it,
    /// unless [`allow_group_or_other_write`](Self::allow_group_or_other_write) accepts that.
    pub(crate) fn check_writers(&self, mode: u32, what: &str) -> io::Result<()> {
        let mode = mode & 0o777;
        if mode & 0o022 == 0 || self.shared_write {
            return Ok(());
        }
        let writers = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and other users",
            (true, false) => "its group",
            _ => "other users",
        };
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{what}: mode {mode:04o} lets {writers} write it, and a writer can forge its \
                 contents, lock state included; refused unless \
                 ShmOptions::allow_group_or_other_write(true)"
            ),
        ))
    }
}
