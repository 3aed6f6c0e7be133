//! memfd segments: `memfd_create`, `ftruncate`, seals, `mmap(MAP_SHARED)`; opened again from
//! a descriptor that another process passed on (`SCM_RIGHTS`) or that a child inherited.
//!
//! A memfd has no name in any namespace: it lives while some process holds a descriptor or a
//! mapping of it, and nothing is left behind when the last one goes. So it needs neither a
//! clean-up function nor the in-use mark of POSIX segments, and a descriptor is the only way
//! in: whoever holds one may write the bytes, as the owner of a named segment may.
//!
//! Every segment is sealed at its size (`F_SEAL_SHRINK | F_SEAL_GROW`, then `F_SEAL_SEAL` so
//! no holder can add or drop seals) before its header is written, and an opener refuses a
//! descriptor whose file is not sealed against shrinking: a file cut short under a mapping
//! makes every access past its new end fault (`SIGBUS`), and a received descriptor is often
//! the only thing an opener knows about its sender.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

use super::fill::{Fill, InPlace, Moved};
use super::header::{Creator, Geometry, HEADER_SIZE};
use super::map::Mapping;
use super::{check_segment_align, segments_supported, ShmBox, ShmOptions};
use crate::sys::error::{invalid_data, invalid_input, with_context};
use crate::{ShmSafe, ShmZeroable};

/// What every segment's memfd name starts with: `/proc/<pid>/fd/<n>` of a descriptor reads
/// `/memfd:shmsync:<label> (deleted)`, so tools can find them.
const PREFIX: &str = "shmsync";

/// The longest name `memfd_create` takes: `NAME_MAX` less the `memfd:` it puts in front.
const NAME_MAX: usize = 249;

/// The seals of every segment: its size is fixed, and so are its seals.
const SEALS: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

/// Seals that stop this process from mapping the memfd writable.
const WRITE_SEALS: i32 = libc::F_SEAL_WRITE | libc::F_SEAL_FUTURE_WRITE;

impl<T: ShmSafe> ShmBox<T> {
    /// Creates a memfd segment holding `value`: a file in memory with no name, which other
    /// processes open from its descriptor ([`memfd`](Self::memfd), [`from_fd`](Self::from_fd))
    /// — passed over a Unix socket with `SCM_RIGHTS`, or inherited by a child. It goes away
    /// when the last descriptor and mapping of it do; nothing is left to unlink.
    ///
    /// `label` names it for people: `/proc/<pid>/fd/<n>` shows `/memfd:shmsync:<label>` (or
    /// `/memfd:shmsync` for an empty label). The file is sealed at its size (`F_SEAL_SHRINK`,
    /// `F_SEAL_GROW`, `F_SEAL_SEAL`) before the header is written, so no holder of a
    /// descriptor can cut it short under another process's mapping. The descriptor is
    /// close-on-exec (`MFD_CLOEXEC`); a child forked later inherits it and the mapping.
    ///
    /// Linux only (`memfd_create`, Linux 3.17).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a label with a NUL byte or longer than 241 bytes, or a `T`
    /// aligned beyond the page size; the OS error of `memfd_create`, `ftruncate` or `mmap`
    /// (for example `OutOfMemory`); `Unsupported` under `--cfg shmsync_loom`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, ShmMutex};
    ///
    /// let board = ShmBox::memfd_create("board", ShmMutex::new(0u64)).unwrap();
    /// let fd = board.memfd().unwrap().try_clone_to_owned().unwrap();
    /// // Another process would receive `fd` over a Unix socket; here we open it again.
    /// let again = ShmBox::<ShmMutex<u64>>::from_fd(fd).unwrap();
    /// *again.lock().unwrap() += 1;
    /// assert_eq!(*board.lock().unwrap(), 1);
    /// ```
    pub fn memfd_create(label: &str, value: T) -> io::Result<Self> {
        create(label, Moved(|| value))
    }

    /// Opens the memfd segment behind `fd`, validating that it holds a `T`: a descriptor
    /// received from another process (`SCM_RIGHTS`) or inherited, of a segment made by
    /// [`memfd_create`](Self::memfd_create) or its `_zeroed` and `_with` forms.
    ///
    /// The descriptor is the capability: whoever passed it on can write the segment and is
    /// trusted as the owner of a named segment is, so the owner and mode checks of
    /// [`ShmOptions`] do not apply. What is checked, reading only: that `fd` is a memfd
    /// sealed against shrinking and opened for reading and writing, its size, and the header
    /// (format version, layout fingerprint, size, alignment, backend), as
    /// [`open`](Self::open) does. A segment is handed out only once it is ready, so one that
    /// is not is refused at once. The box keeps `fd` (see [`memfd`](Self::memfd)); on an
    /// error it is closed.
    ///
    /// # Errors
    ///
    /// - `InvalidInput`: `fd` is not a memfd (a socket, a pipe, a directory, a file that
    ///   cannot be sealed), or `T` is aligned beyond the page size.
    /// - `InvalidData`: a memfd that is not sealed against shrinking (no shmsync segment),
    ///   too small for a header, not a shmsync segment, another layout, backend or format
    ///   version, a value whose bytes are not a valid `T`, or a segment whose creator died
    ///   before it was ready.
    /// - `PermissionDenied`: `fd` was opened read-only or write-only, or the memfd is sealed
    ///   against writing.
    /// - `Unsupported`: made by a process that sees another `/dev/shm`, and under
    ///   `--cfg shmsync_loom`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use shmsync::ShmBox;
    ///
    /// let made = ShmBox::memfd_create("numbers", [1u32, 2, 3]).unwrap();
    /// let fd = || made.memfd().unwrap().try_clone_to_owned().unwrap();
    /// assert_eq!(*ShmBox::<[u32; 3]>::from_fd(fd()).unwrap(), [1, 2, 3]);
    /// let err = ShmBox::<[i32; 3]>::from_fd(fd()).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidData, "another layout");
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let err = ShmBox::<[u32; 3]>::from_fd(a.into()).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput, "a socket is not a memfd");
    /// ```
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        open(fd)
    }

    /// The memfd of a box made by the `memfd_` functions or [`from_fd`](Self::from_fd),
    /// to pass on to another process: over a Unix socket with `SCM_RIGHTS` (see the
    /// `fd_passing` example), or to a child. `None` for other boxes.
    ///
    /// Whoever gets a descriptor of it can write the segment's bytes, lock state included:
    /// pass it only to processes you trust as you trust writers of a named segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmBox;
    /// let made = ShmBox::<[u8; 4096]>::memfd_create_zeroed("frame").unwrap();
    /// let link = std::fs::read_link(format!(
    ///     "/proc/self/fd/{}",
    ///     std::os::fd::AsRawFd::as_raw_fd(&made.memfd().unwrap())
    /// ));
    /// assert!(link.unwrap().to_string_lossy().starts_with("/memfd:shmsync:frame"));
    /// assert!(ShmBox::new(0u8).unwrap().memfd().is_none());
    /// ```
    pub fn memfd(&self) -> Option<BorrowedFd<'_>> {
        self.mapping.memfd().map(AsFd::as_fd)
    }
}

impl<T: ShmZeroable> ShmBox<T> {
    /// [`memfd_create`](Self::memfd_create) of an all-zero `T`, made in place: only the
    /// header's page is written, so a 1 GiB value costs what a small one does.
    ///
    /// # Errors
    ///
    /// As for [`memfd_create`](Self::memfd_create).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, ShmMutex};
    /// let locks = ShmBox::<[ShmMutex<u64>; 1_000_000]>::memfd_create_zeroed("locks").unwrap();
    /// *locks[999_999].lock().unwrap() += 1;
    /// ```
    pub fn memfd_create_zeroed(label: &str) -> io::Result<Self> {
        ShmBox::memfd_create_with(label, |_| {})
    }

    /// [`memfd_create_zeroed`](Self::memfd_create_zeroed), then `init` on the value in place,
    /// before the descriptor can be passed on.
    ///
    /// # Errors
    ///
    /// As for [`memfd_create`](Self::memfd_create).
    ///
    /// # Panics
    ///
    /// A panic of `init` goes on to the caller; the memfd is closed and unmapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, ShmMutex};
    /// let ring = ShmBox::<ShmMutex<[u32; 1 << 20]>>::memfd_create_with("ring", |m| {
    ///     m.get_mut().unwrap()[0] = 42;
    /// })
    /// .unwrap();
    /// assert_eq!(ring.lock().unwrap()[0], 42);
    /// ```
    pub fn memfd_create_with(label: &str, init: impl FnOnce(&mut T)) -> io::Result<Self> {
        create(label, InPlace(init))
    }
}

/// The memfd name for `label`: `shmsync:<label>`, or `shmsync` alone.
fn memfd_name(label: &str) -> io::Result<CString> {
    let name = match label {
        "" => PREFIX.to_owned(),
        _ => format!("{PREFIX}:{label}"),
    };
    if name.len() > NAME_MAX {
        return Err(invalid_input(format!(
            "memfd label {label:?}: at most {} bytes",
            NAME_MAX - PREFIX.len() - 1
        )));
    }
    CString::new(name).map_err(|_| invalid_input(format!("memfd label {label:?} has a NUL byte")))
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL)`; without
/// `MFD_NOEXEC_SEAL` on kernels older than 6.3, which refuse it (`EINVAL`). Where it is known,
/// it keeps `vm.memfd_noexec` from refusing the call and seals the file against `exec`.
fn memfd_create(name: &CString, what: &str) -> io::Result<File> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    match memfd_create_raw(name, flags | libc::MFD_NOEXEC_SEAL) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => memfd_create_raw(name, flags),
        made => made,
    }
    .map_err(|e| with_context(e, format_args!("{what}: memfd_create")))
}

/// One `memfd_create` call.
fn memfd_create_raw(name: &CString, flags: libc::c_uint) -> io::Result<File> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `fcntl(fd, cmd, arg)` for the integer commands (`F_ADD_SEALS`, `F_GET_SEALS`, `F_GETFL`).
fn fcntl(file: &File, cmd: i32, arg: i32) -> io::Result<i32> {
    // SAFETY: these commands take an integer argument and touch no memory.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, arg) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// Makes the memfd segment for `label` and fills in its value.
fn create<T: ShmSafe>(label: &str, fill: impl Fill<T>) -> io::Result<ShmBox<T>> {
    segments_supported("ShmBox::memfd_create")?;
    let name = memfd_name(label)?;
    let what = format!("memfd {}", name.to_string_lossy());
    check_segment_align::<T>(&what)?;
    let file = memfd_create(&name, &what)?;
    let total = Geometry::of::<T>().total;
    file.set_len(total as u64)
        .map_err(|e| with_context(e, format_args!("{what}: ftruncate")))?;
    fcntl(&file, libc::F_ADD_SEALS, SEALS)
        .map_err(|e| with_context(e, format_args!("{what}: fcntl(F_ADD_SEALS)")))?;
    let mapping = map(file, total, &what)?;
    // SAFETY: the mapping is the full size of a fresh memfd (zero-filled by `ftruncate`)
    // whose descriptor no other process has yet.
    Ok(unsafe { ShmBox::initialise(mapping, fill) })
}

/// Maps `len` bytes of the memfd `file`, which the mapping keeps.
fn map(file: File, len: usize, what: &str) -> io::Result<Mapping> {
    let map = memmap2::MmapOptions::new()
        .len(len)
        .map_raw(&file)
        .map_err(|e| with_context(e, format_args!("{what}: mmap")))?;
    Ok(Mapping::Memfd { map, file })
}

/// Opens the segment behind a received descriptor.
fn open<T: ShmSafe>(fd: OwnedFd) -> io::Result<ShmBox<T>> {
    segments_supported("ShmBox::from_fd")?;
    let file = File::from(fd);
    let what = describe(&file);
    check_segment_align::<T>(&what)?;
    let len = checked_len(&file, &what)?;
    let mapping = map(file, len, &what)?;
    // A segment's descriptor exists outside its creator only once the value is ready: one
    // that is not was abandoned by a creator that died inside `init`.
    let abandoned = || Creator::Unnamed;
    // SAFETY: `len` bytes, at least a header, are mapped.
    unsafe { ShmBox::validated(mapping, len, &what, &ShmOptions::new(), abandoned) }
}

/// How messages name a descriptor: by its memfd name where `/proc` shows it.
fn describe(file: &File) -> String {
    let fd = file.as_raw_fd();
    match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
        Ok(link) => format!("descriptor {fd} ({})", link.display()),
        Err(_) => format!("descriptor {fd}"),
    }
}

/// The size of the memfd behind `file`, after checking that it is a memfd sealed against
/// shrinking that this process may map for reading and writing.
fn checked_len(file: &File, what: &str) -> io::Result<usize> {
    let meta = file
        .metadata()
        .map_err(|e| with_context(e, format_args!("{what}: fstat")))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let is = match () {
            _ if kind.is_socket() => "a socket",
            _ if kind.is_fifo() => "a pipe",
            _ if kind.is_dir() => "a directory",
            _ if kind.is_char_device() || kind.is_block_device() => "a device",
            _ => "not a regular file",
        };
        return Err(invalid_input(format!("{what}: {is}, not a memfd")));
    }
    let seals = match fcntl(file, libc::F_GET_SEALS, 0) {
        Ok(seals) => seals,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return Err(invalid_input(format!(
                "{what}: not a memfd (its file cannot be sealed)"
            )))
        }
        Err(e) => return Err(with_context(e, format_args!("{what}: fcntl(F_GET_SEALS)"))),
    };
    if seals & libc::F_SEAL_SHRINK == 0 {
        return Err(invalid_data(format!(
            "{what}: not sealed against shrinking (seals 0x{seals:x}), so not a shmsync \
             segment: a holder could cut it short under the mapping"
        )));
    }
    check_writable(file, seals, what)?;
    let len = meta.len();
    if len < HEADER_SIZE as u64 {
        return Err(invalid_data(format!(
            "{what}: {len} bytes, too small for a {HEADER_SIZE}-byte header"
        )));
    }
    usize::try_from(len).map_err(|_| invalid_data(format!("{what}: {len} bytes is too large")))
}

/// Refuses a descriptor that cannot be mapped for writing: opened read-only or write-only
/// (a reopened `/proc/<pid>/fd/<n>`), or a memfd sealed against writing.
fn check_writable(file: &File, seals: i32, what: &str) -> io::Result<()> {
    let denied = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    let flags = fcntl(file, libc::F_GETFL, 0)
        .map_err(|e| with_context(e, format_args!("{what}: fcntl(F_GETFL)")))?;
    if flags & libc::O_ACCMODE != libc::O_RDWR {
        return Err(denied(format!(
            "{what}: opened {}, but a segment is mapped for reading and writing",
            if flags & libc::O_ACCMODE == libc::O_RDONLY {
                "read-only"
            } else {
                "write-only"
            }
        )));
    }
    if seals & WRITE_SEALS != 0 {
        return Err(denied(format!(
            "{what}: sealed against writing (seals 0x{seals:x})"
        )));
    }
    Ok(())
}
