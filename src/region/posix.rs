//! POSIX named segments: `shm_open`, `flock`, `ftruncate`, `mmap(MAP_SHARED)`, `shm_unlink`.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fill::Fill;
use super::header::{Creator, Geometry, HEADER_SIZE};
use super::map::Mapping;
use super::{check_segment_align, named, ShmBox, ShmOptions};
use crate::sys::error::{invalid_data, invalid_input, last_os_error};
use crate::sys::time::Deadline;
use crate::ShmSafe;

/// How long a just-created segment may stay zero bytes long (its creator has not sized it yet);
/// a shorter `ShmOptions::init_timeout` shortens it.
const SIZING_GRACE: Duration = Duration::from_millis(200);

/// The byte of a segment's file whose OFD read lock says "a process has this segment open
/// through shmsync": far past the end of any segment, so it overlaps nothing (a lock may lie
/// past the end of a file, and takes no space there).
#[cfg(target_os = "linux")]
const IN_USE_BYTE: i64 = 1 << 62;

/// Checks a `shm_open` name: one leading `/`, no other `/`, no NUL, 2..=255 bytes.
pub(crate) fn check_name(name: &str) -> io::Result<CString> {
    let body = name.strip_prefix('/').unwrap_or("");
    if body.is_empty() || body.contains('/') || name.len() > 255 || body == "." || body == ".." {
        return Err(invalid_input(format!(
            "segment name {name:?}: expected '/' followed by 1 to 254 bytes without '/'"
        )));
    }
    CString::new(name)
        .map_err(|_| invalid_input(format!("segment name {name:?} contains a NUL byte")))
}

/// The mode as `shm_open` takes it: variadic (so promoted to `c_uint`) on macOS.
#[cfg(target_os = "macos")]
fn mode_arg(mode: u32) -> libc::c_uint {
    mode
}

/// The mode as `shm_open` takes it.
#[cfg(not(target_os = "macos"))]
fn mode_arg(mode: u32) -> libc::mode_t {
    mode as libc::mode_t
}

/// `shm_open`; `Ok(None)` when `O_CREAT | O_EXCL` finds the name taken or a plain open finds
/// it missing, so that `open_or_create` can retry.
pub(super) fn shm_open(
    cname: &CString,
    flags: i32,
    mode: u32,
    what: &str,
) -> io::Result<Option<File>> {
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::shm_open(cname.as_ptr(), flags, mode_arg(mode)) };
    if fd >= 0 {
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        return Ok(Some(unsafe { File::from_raw_fd(fd) }));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) if flags & libc::O_EXCL != 0 => Ok(None),
        Some(libc::ENOENT) if flags & libc::O_CREAT == 0 => Ok(None),
        Some(libc::EINVAL | libc::EISDIR) if is_directory(cname) => Err(invalid_input(format!(
            "{what}: {} is a directory, not a shared memory segment",
            segment_path(cname).display()
        ))),
        _ => Err(crate::sys::error::with_context(err, what)),
    }
}

/// Where glibc keeps the segment `cname` (`/dev/shm` followed by the name).
fn segment_path(cname: &CString) -> PathBuf {
    let body = cname.to_bytes().strip_prefix(b"/").unwrap_or_default();
    Path::new("/dev/shm").join(OsStr::from_bytes(body))
}

/// Whether the name is a directory under `/dev/shm`: glibc's `shm_open` then fails with a bare
/// `EINVAL` (the `EISDIR` of `open`, rewritten). Elsewhere names have no path to look at.
fn is_directory(cname: &CString) -> bool {
    cfg!(target_os = "linux")
        && std::fs::symlink_metadata(segment_path(cname)).is_ok_and(|meta| meta.is_dir())
}

pub(crate) fn create<T: ShmSafe>(
    opts: &ShmOptions,
    name: &str,
    fill: impl Fill<T>,
) -> io::Result<ShmBox<T>> {
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    check_segment_align::<T>(&what)?;
    named::created(&what, try_create(opts, &cname, &what, fill))
}

/// Creates `name` and fills in its value with `init`, which runs only once the name is ours;
/// `Ok(Err(init))` hands it back when the name exists.
///
/// The creator holds an exclusive `flock` from just after its `O_EXCL` open until the value
/// is `READY`; openers read a free lock on a segment that is not ready as "its creator is gone".
fn try_create<T: ShmSafe, F: Fill<T>>(
    opts: &ShmOptions,
    cname: &CString,
    what: &str,
    init: F,
) -> io::Result<Result<ShmBox<T>, F>> {
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    let Some(file) = shm_open(cname, flags, opts.mode, what)? else {
        return Ok(Err(init));
    };
    // Nobody can be removing a name created a moment ago, so this does not wait.
    hold(&file, opts, what).inspect_err(|_| unlink_quietly(cname))?;
    let lock = lock_exclusive(&file, what).inspect_err(|_| unlink_quietly(cname))?;
    // Declared after `lock`, so that it drops first: on an error or a panic of `init` the
    // name goes before the lock does, and an opener that then finds the lock free also finds
    // the name gone (and retries or reports NotFound).
    let discard = named::Discard::new(|| unlink_quietly(cname));
    let mapping = size_and_map(&file, opts.mode, Geometry::of::<T>().total, what)?;
    // SAFETY: the mapping is the full size of a fresh, zero-filled (just sized) segment only
    // this process knows is being initialised (others wait for the READY state).
    let boxed = unsafe { ShmBox::initialise(mapping, init) };
    discard.keep();
    // READY is published: let go of the lock.
    drop(lock);
    Ok(Ok(boxed))
}

/// Removes a name this process created and could not initialise.
fn unlink_quietly(cname: &CString) {
    // SAFETY: `cname` is NUL-terminated; a name already gone just fails with ENOENT.
    unsafe { libc::shm_unlink(cname.as_ptr()) };
}

/// `flock(fd, op)`, retried on `EINTR`.
fn flock(file: &File, op: i32) -> io::Result<()> {
    loop {
        // SAFETY: flock on an open descriptor touches no memory.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// The creator's exclusive `flock`, let go of explicitly when dropped: a child forked while
/// it is held shares the open file description, and closing our descriptor alone would leave
/// the lock held for as long as that child lives.
struct CreatorLock<'a>(&'a File);

impl Drop for CreatorLock<'_> {
    fn drop(&mut self) {
        let _ = flock(self.0, libc::LOCK_UN);
    }
}

/// Takes the creator's exclusive lock. Where shared memory has no `flock` (`EOPNOTSUPP`,
/// `EINVAL`) it goes without: openers then fall back to a grace period.
fn lock_exclusive<'a>(file: &'a File, what: &str) -> io::Result<CreatorLock<'a>> {
    match flock(file, libc::LOCK_EX) {
        Err(e) if !matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => Err(
            crate::sys::error::with_context(e, format_args!("{what}: flock")),
        ),
        _ => Ok(CreatorLock(file)),
    }
}

/// Whether the creator of an opened segment still holds its lock, read without blocking it:
/// a shared lock that cannot be had means the creator is at work.
fn creator_of(file: &File) -> Creator {
    match flock(file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Creator::Working,
        Err(_) => return Creator::Unknown,
    }
    let _ = flock(file, libc::LOCK_UN);
    // A creator that gives up unlinks the name before it lets go of the lock.
    match file.metadata() {
        Ok(meta) if meta.nlink() == 0 => Creator::Withdrawn,
        _ => Creator::Gone,
    }
}

fn size_and_map(file: &File, mode: u32, total: usize, what: &str) -> io::Result<Mapping> {
    // SAFETY: `file` is an open descriptor; fchmod sets the exact mode whatever the umask.
    if unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) } != 0 {
        return Err(last_os_error(format_args!("{what}: fchmod")));
    }
    file.set_len(total as u64)
        .map_err(|e| crate::sys::error::with_context(e, format_args!("{what}: ftruncate")))?;
    map(file, total, what)
}

/// Maps `len` bytes of `file`, keeping a descriptor of its open file description (and so
/// the in-use mark of [`hold`]) for as long as the mapping lives.
pub(super) fn map(file: &File, len: usize, what: &str) -> io::Result<Mapping> {
    let with = |e| crate::sys::error::with_context(e, format_args!("{what}: mmap"));
    let map = memmap2::MmapOptions::new()
        .len(len)
        .map_raw(file)
        .map_err(with)?;
    let holder = file
        .try_clone()
        .map_err(|e| crate::sys::error::with_context(e, format_args!("{what}: dup")))?;
    Ok(Mapping::File {
        map,
        _holder: holder,
    })
}

/// Marks the segment open by `file`'s open file description: an OFD read lock on
/// [`IN_USE_BYTE`], which the kernel drops only when the description's last descriptor
/// closes — the one kept with the mapping, a forked child's copy, or any at exit or exec. So
/// "nobody holds the read lock" is the kernel's word that no process has the segment open
/// through shmsync, whatever PID namespace it is in; [`unlink_unused`] removes a segment
/// only while it holds the write lock.
///
/// Waits (up to the init timeout) while [`unlink_unused`] holds the write lock; returns
/// false when the segment was removed meanwhile (its name is gone).
fn hold(file: &File, opts: &ShmOptions, what: &str) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        let give_up = Deadline::after(opts.init_timeout);
        loop {
            let kind = libc::F_RDLCK as i16;
            match crate::sys::ofd::lock(file.as_raw_fd(), libc::F_OFD_SETLK, kind, IN_USE_BYTE) {
                // A file system without OFD locks cannot mark the segment; nor can it prove
                // it unused, so `unlink_unused` refuses it.
                Ok(_) | Err(libc::EINVAL | libc::EOPNOTSUPP) => break,
                Err(libc::EAGAIN | libc::EACCES) => {
                    if removed(file) {
                        return Ok(false);
                    }
                    if give_up.is_some_and(Deadline::passed) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "{what}: another process has been removing it for over {:?}",
                                opts.init_timeout
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    return Err(crate::sys::error::with_context(
                        io::Error::from_raw_os_error(e),
                        format_args!("{what}: fcntl(F_OFD_SETLK)"),
                    ))
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (opts, what);
    Ok(!removed(file))
}

/// Whether the file's name has been removed.
fn removed(file: &File) -> bool {
    file.metadata().is_ok_and(|meta| meta.nlink() == 0)
}

/// Opens `name` to probe it, after checking that it is a shmsync segment (its magic; nothing
/// else is read). `Ok(None)` when no segment has that name.
#[cfg(target_os = "linux")]
fn open_to_probe(name: &str, flags: i32) -> io::Result<Option<(File, String)>> {
    use std::os::unix::fs::FileExt;
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    let Some(file) = shm_open(&cname, flags, 0, &what)? else {
        return Ok(None);
    };
    let mut magic = [0u8; 8];
    let is_ours = file.read_exact_at(&mut magic, 0).is_ok() && magic == super::header::MAGIC;
    if !is_ours {
        return Err(invalid_data(format!("{what}: not a shmsync segment")));
    }
    Ok(Some((file, what)))
}

/// Whether some process has `name` open through shmsync now (see [`hold`]).
#[cfg(target_os = "linux")]
pub(crate) fn in_use(name: &str) -> io::Result<bool> {
    let Some((file, what)) = open_to_probe(name, libc::O_RDONLY)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("segment {name}: no such segment"),
        ));
    };
    let kind = libc::F_WRLCK as i16;
    match crate::sys::ofd::lock(file.as_raw_fd(), libc::F_OFD_GETLK, kind, IN_USE_BYTE) {
        Ok(found) => Ok(found != libc::F_UNLCK as i16),
        Err(e) => Err(crate::sys::error::with_context(
            io::Error::from_raw_os_error(e),
            format_args!("{what}: fcntl(F_OFD_GETLK)"),
        )),
    }
}

/// Removes `name` if no process has it open through shmsync (see [`hold`]); returns whether
/// it did. While it decides, openers wait: they cannot mark the segment in use.
#[cfg(target_os = "linux")]
pub(crate) fn unlink_unused(name: &str) -> io::Result<bool> {
    let Some((file, what)) = open_to_probe(name, libc::O_RDWR)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("segment {name}: no such segment"),
        ));
    };
    let kind = libc::F_WRLCK as i16;
    match crate::sys::ofd::lock(file.as_raw_fd(), libc::F_OFD_SETLK, kind, IN_USE_BYTE) {
        Ok(_) => {}
        Err(libc::EAGAIN | libc::EACCES) => return Ok(false),
        Err(e) => {
            return Err(crate::sys::error::with_context(
                io::Error::from_raw_os_error(e),
                format_args!("{what}: fcntl(F_OFD_SETLK), so it cannot be shown unused"),
            ))
        }
    }
    // The name may have been removed and given to a new segment since the open: remove it
    // only if it still names the file whose lock is held here.
    let cname = check_name(name)?;
    let ours = file.metadata()?;
    match std::fs::metadata(segment_path(&cname)) {
        Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {}
        _ => return Ok(false),
    }
    unlink(name)?;
    Ok(true)
}

pub(crate) fn open<T: ShmSafe>(opts: &ShmOptions, name: &str) -> io::Result<ShmBox<T>> {
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    check_segment_align::<T>(&what)?;
    named::opened(&what, try_open(opts, &cname, &what))
}

/// Opens and validates `name`; `Ok(None)` when it does not exist.
fn try_open<T: ShmSafe>(
    opts: &ShmOptions,
    cname: &CString,
    what: &str,
) -> io::Result<Option<ShmBox<T>>> {
    let Some(file) = shm_open(cname, libc::O_RDWR, 0, what)? else {
        return Ok(None);
    };
    if !hold(&file, opts, what)? {
        // Removed between the open and the hold: as if it had not been there.
        return Ok(None);
    }
    let len = checked_len(&file, opts, what)?;
    let mapping = map(&file, len, what)?;
    // SAFETY: `len` bytes, at least a header, are mapped.
    unsafe { ShmBox::validated(mapping, len, what, opts, || creator_of(&file)) }.map(Some)
}

/// The segment's size after checking its owner, waiting for a creator to size it.
///
/// The creator locks the segment before it sizes it, so a zero-byte segment whose lock is
/// held is waited for up to the init timeout; one whose lock is free gets a short grace for
/// the two calls between the creator's `shm_open` and its `flock`.
fn checked_len(file: &File, opts: &ShmOptions, what: &str) -> io::Result<usize> {
    let sized_by = Deadline::after(SIZING_GRACE.min(opts.init_timeout));
    let give_up = Deadline::after(opts.init_timeout);
    loop {
        let len = owned_size(file, opts, what)?;
        if len >= HEADER_SIZE as u64 {
            return usize::try_from(len)
                .map_err(|_| invalid_data(format!("{what}: {len} bytes is too large to map")));
        }
        let creator = creator_of(file);
        let until = match creator {
            Creator::Working => give_up,
            _ => sized_by,
        };
        if len != 0 || creator == Creator::Withdrawn || until.is_some_and(Deadline::passed) {
            return Err(too_small(what, len, creator, opts.init_timeout));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The segment's size, after checking that its owner is trusted and that no one else may
/// write it (unless the options say otherwise).
pub(super) fn owned_size(file: &File, opts: &ShmOptions, what: &str) -> io::Result<u64> {
    let meta = file
        .metadata()
        .map_err(|e| crate::sys::error::with_context(e, format_args!("{what}: fstat")))?;
    opts.check_owner(meta.uid(), "owned", what)?;
    opts.check_writers(meta.mode(), what)?;
    Ok(meta.size())
}

/// The error for a segment too small for a header.
fn too_small(what: &str, len: u64, creator: Creator, timeout: Duration) -> io::Error {
    match (len, creator) {
        (0, Creator::Withdrawn) => io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: its creator gave up and removed it before sizing it"),
        ),
        (0, Creator::Working) => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: its creator is alive but did not size it within {timeout:?}"),
        ),
        _ => invalid_data(format!(
            "{what}: {len} bytes, too small for a {HEADER_SIZE}-byte header"
        )),
    }
}

/// Opens `name`, or creates it with `init` if it does not exist.
///
/// A segment whose creator died before it was ready is reported as `InvalidData`, never
/// unlinked here: another process may be inspecting or recovering it.
pub(crate) fn open_or_create<T: ShmSafe>(
    opts: &ShmOptions,
    name: &str,
    init: impl Fill<T>,
) -> io::Result<ShmBox<T>> {
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    check_segment_align::<T>(&what)?;
    named::open_or_create(
        &what,
        || try_open(opts, &cname, &what),
        |init| try_create(opts, &cname, &what, init),
        init,
    )
}

pub(crate) fn unlink(name: &str) -> io::Result<()> {
    let cname = check_name(name)?;
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    if unsafe { libc::shm_unlink(cname.as_ptr()) } != 0 {
        return Err(last_os_error(format_args!("segment {name}: shm_unlink")));
    }
    Ok(())
}

/// A copy of the first header-size bytes of `name` (fewer if the file is shorter), read
/// through a read-only descriptor.
pub(crate) fn read_header(name: &str) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    let Some(file) = shm_open(&cname, libc::O_RDONLY, 0, &what)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: no such segment"),
        ));
    };
    let mut bytes = Vec::with_capacity(HEADER_SIZE);
    file.take(HEADER_SIZE as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| crate::sys::error::with_context(e, format_args!("{what}: read")))?;
    Ok(bytes)
}
