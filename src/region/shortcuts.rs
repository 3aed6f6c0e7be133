//! The `ShmBox` shortcuts for named and System V segments, with the default `ShmOptions`.

use std::io;

use super::{posix, sysv, ShmBox, ShmOptions, SysvKey};
use crate::ShmSafe;

/// Removes the POSIX named segment `name` (`shm_unlink`), whatever type it holds.
///
/// The segment goes away once no process has it mapped; handles already open keep working,
/// and the name is free at once for a new `create`. Nothing is checked about the contents:
/// a program that unlinks a name it did not create may remove another program's segment.
/// [`ShmBox::unlink`] does the same through a type.
///
/// # Errors
///
/// `NotFound` when no segment has that name, `PermissionDenied`, `InvalidInput` for a bad
/// name (as for [`ShmBox::create`]); `Unsupported` under `--cfg shmsync_loom`.
///
/// # Examples
///
/// ```
/// use shmsync::{ShmBox, ShmMutex};
/// let name = format!("/shmsync-doc-unlink-{}", std::process::id());
/// let board = ShmBox::create(&name, ShmMutex::new([0u8; 64])).unwrap();
/// shmsync::unlink(&name).unwrap(); // no need to name `ShmMutex<[u8; 64]>`
/// *board.lock().unwrap() = [1; 64]; // the mapping still works
/// let gone = shmsync::unlink(&name).unwrap_err();
/// assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
/// ```
pub fn unlink(name: &str) -> io::Result<()> {
    super::segments_supported("unlink")?;
    posix::unlink(name)
}

/// Whether some process has the POSIX named segment `name` open through shmsync now.
///
/// Every `ShmBox` over a POSIX segment marks it in use with an open-file-description lock that
/// the kernel drops when the last descriptor of that open file goes: when the box drops, and
/// when its process exits, is killed or `exec`s (a forked child that inherited the box keeps
/// the mark while it lives). So the answer is the kernel's, the same in every PID namespace
/// and without `/proc`. A process that maps the segment by other means (a C program, another
/// library) is not counted.
///
/// # Errors
///
/// `NotFound` when no segment has that name, `InvalidData` when it is not a shmsync segment
/// (or its creator has not written the header yet), `PermissionDenied`, `InvalidInput` for a
/// bad name; `Unsupported` outside Linux and under `--cfg shmsync_loom`.
///
/// # Examples
///
/// ```
/// use shmsync::ShmBox;
/// let name = format!("/shmsync-doc-in-use-{}", std::process::id());
/// let segment = ShmBox::create(&name, 0u64).unwrap();
/// assert!(shmsync::segment_in_use(&name).unwrap());
/// drop(segment);
/// assert!(!shmsync::segment_in_use(&name).unwrap());
/// shmsync::unlink(&name).unwrap();
/// ```
pub fn segment_in_use(name: &str) -> io::Result<bool> {
    super::segments_supported("segment_in_use")?;
    #[cfg(target_os = "linux")]
    return posix::in_use(name);
    #[cfg(not(target_os = "linux"))]
    return Err(no_ofd_locks(name));
}

/// Removes the POSIX named segment `name` only if no process has it open through shmsync
/// (see [`segment_in_use`]); returns whether it removed it. For cleaning up segments left
/// behind by processes that were killed: unlike [`unlink`], it never removes a segment that
/// a live process is using through shmsync, and it removes only shmsync segments.
///
/// While it decides, processes opening the segment wait for it (briefly); they find the name
/// gone if it was removed. A process mapping the segment by other means is not counted.
///
/// # Errors
///
/// As for [`segment_in_use`]; also `PermissionDenied` when this process may not write or
/// remove the segment.
///
/// # Examples
///
/// ```
/// use shmsync::ShmBox;
/// let name = format!("/shmsync-doc-unlink-unused-{}", std::process::id());
/// let segment = ShmBox::create(&name, 0u64).unwrap();
/// assert!(!shmsync::unlink_unused(&name).unwrap(), "in use: kept");
/// drop(segment);
/// assert!(shmsync::unlink_unused(&name).unwrap(), "unused: removed");
/// assert!(ShmBox::<u64>::open(&name).is_err());
/// ```
pub fn unlink_unused(name: &str) -> io::Result<bool> {
    super::segments_supported("unlink_unused")?;
    #[cfg(target_os = "linux")]
    return posix::unlink_unused(name);
    #[cfg(not(target_os = "linux"))]
    return Err(no_ofd_locks(name));
}

/// The error outside Linux, which has no open-file-description locks.
#[cfg(not(target_os = "linux"))]
fn no_ofd_locks(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("segment {name}: telling whether it is in use needs Linux's OFD locks"),
    )
}

impl<T: ShmSafe> ShmBox<T> {
    /// Creates the POSIX named segment `name` (`O_EXCL`, mode `0o600`) holding `value`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad name (it must be `/` followed by up to 254 bytes without `/`),
    /// `AlreadyExists`, `PermissionDenied`, or the OS error.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmBox;
    /// let name = format!("/shmsync-doc-create-{}", std::process::id());
    /// let b = ShmBox::create(&name, 1u64).unwrap();
    /// assert_eq!(ShmBox::create(&name, 2u64).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    /// ShmBox::<u64>::unlink(&name).unwrap();
    /// # drop(b);
    /// ```
    pub fn create(name: &str, value: T) -> io::Result<Self> {
        ShmOptions::new().create(name, value)
    }

    /// Opens the existing POSIX named segment `name`, validating that it holds a `T`.
    ///
    /// # Errors
    ///
    /// `NotFound`, `PermissionDenied` (as for [`ShmOptions::open`]), `InvalidInput`,
    /// `InvalidData` (another layout, backend or format version, not initialised, or
    /// garbage), `TimedOut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmBox;
    /// let err = ShmBox::<u64>::open("/shmsync-doc-missing").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn open(name: &str) -> io::Result<Self> {
        ShmOptions::new().open(name)
    }

    /// Opens `name`, or creates it with `init()`; `init` runs exactly once among racing
    /// processes and every caller sees its value.
    ///
    /// A segment whose creator died before it was ready is reported, not repaired: see
    /// [`ShmOptions::open_or_create`].
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create) and [`open`](Self::open): `InvalidData` for a segment
    /// whose creator died before it was ready (unlink it and call again).
    ///
    /// # Panics
    ///
    /// When `init` panics, the name is unlinked and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmBox;
    /// let name = format!("/shmsync-doc-box-ooc-{}", std::process::id());
    /// let b = ShmBox::open_or_create(&name, || 5i32).unwrap();
    /// assert_eq!(*b, 5);
    /// ShmBox::<i32>::unlink(&name).unwrap();
    /// ```
    pub fn open_or_create(name: &str, init: impl FnOnce() -> T) -> io::Result<Self> {
        ShmOptions::new().open_or_create(name, init)
    }

    /// Removes the name `name`; handles already open keep working. The same as
    /// [`shmsync::unlink`](crate::unlink), which needs no type.
    ///
    /// # Errors
    ///
    /// `NotFound`, `PermissionDenied`, `InvalidInput`.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = shmsync::ShmBox::<u8>::unlink("/shmsync-doc-nothing").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn unlink(name: &str) -> io::Result<()> {
        unlink(name)
    }

    /// Creates a System V segment for `key` holding `value`, mode `0o600`.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_create`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, SysvKey};
    /// let b = ShmBox::sysv_create(SysvKey::Private, 1u8).unwrap();
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_create(key: SysvKey, value: T) -> io::Result<Self> {
        ShmOptions::new().sysv_create(key, value)
    }

    /// Attaches the existing System V segment for `key`.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, SysvKey};
    /// let err = ShmBox::<u8>::sysv_open(SysvKey::Key(0x5300_dead)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn sysv_open(key: SysvKey) -> io::Result<Self> {
        ShmOptions::new().sysv_open(key)
    }

    /// Opens the System V segment for `key`, or creates it (mode `0o600`) with `init()`;
    /// among racing processes `init` runs exactly once and every caller sees its value.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_open_or_create`].
    ///
    /// # Panics
    ///
    /// When `init` panics, the segment is removed and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, SysvKey};
    /// let key = SysvKey::Key((0x534a_0000 | (std::process::id() & 0xffff)) as _);
    /// let a = ShmBox::sysv_open_or_create(key, || 1u32).unwrap();
    /// let b = ShmBox::sysv_open_or_create(key, || 2u32).unwrap();
    /// assert_eq!((*a, *b), (1, 1));
    /// a.sysv_remove().unwrap();
    /// ```
    pub fn sysv_open_or_create(key: SysvKey, init: impl FnOnce() -> T) -> io::Result<Self> {
        ShmOptions::new().sysv_open_or_create(key, init)
    }

    /// Attaches the System V segment with id `shmid`.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_attach`].
    ///
    /// # Examples
    ///
    /// See [`ShmOptions::sysv_attach`].
    pub fn sysv_attach(shmid: i32) -> io::Result<Self> {
        ShmOptions::new().sysv_attach(shmid)
    }

    /// Marks this box's System V segment for removal (`IPC_RMID`): it goes away once the last
    /// process detaches; attached handles keep working.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a box that is not a System V segment; `PermissionDenied` when this
    /// user may not remove it.
    ///
    /// # Examples
    ///
    /// See [`ShmOptions::sysv_create`].
    pub fn sysv_remove(&self) -> io::Result<()> {
        match self.sysv_id() {
            Some(id) => sysv::remove(id),
            None => Err(crate::sys::error::invalid_input(
                "sysv_remove: this ShmBox is not a System V segment",
            )),
        }
    }
}
