//! POSIX named segments: `shm_open`, `ftruncate`, `mmap(MAP_SHARED)`, `shm_unlink`.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::time::Duration;

use super::header::{Geometry, HEADER_SIZE};
use super::map::Mapping;
use super::{check_segment_align, ShmBox, ShmOptions};
use crate::sys::error::{invalid_data, invalid_input, last_os_error};
use crate::sys::time::Deadline;
use crate::ShmSafe;

/// How long a just-created segment may stay zero bytes long (its creator has not sized it yet);
/// a shorter `ShmOptions::init_timeout` shortens it.
const SIZING_GRACE: Duration = Duration::from_millis(200);

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

/// `shm_open`; `Ok(None)` when `O_CREAT | O_EXCL` finds the name taken or a plain open finds
/// it missing, so that `open_or_create` can retry.
fn shm_open(cname: &CString, flags: i32, mode: u32, what: &str) -> io::Result<Option<File>> {
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::shm_open(cname.as_ptr(), flags, mode as libc::mode_t) };
    if fd >= 0 {
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        return Ok(Some(unsafe { File::from_raw_fd(fd) }));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) if flags & libc::O_EXCL != 0 => Ok(None),
        Some(libc::ENOENT) if flags & libc::O_CREAT == 0 => Ok(None),
        _ => Err(crate::sys::error::with_context(err, what)),
    }
}

pub(crate) fn create<T: ShmSafe>(opts: &ShmOptions, name: &str, value: T) -> io::Result<ShmBox<T>> {
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    check_segment_align::<T>(&what)?;
    match try_create(opts, &cname, &what, || value)? {
        Ok(boxed) => Ok(boxed),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{what}: already exists"),
        )),
    }
}

/// Creates `name` and initialises it with `init()`, which runs only once the name is ours;
/// `Ok(Err(init))` hands the closure back when the name exists.
fn try_create<T: ShmSafe, F: FnOnce() -> T>(
    opts: &ShmOptions,
    cname: &CString,
    what: &str,
    init: F,
) -> io::Result<Result<ShmBox<T>, F>> {
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    let Some(file) = shm_open(cname, flags, opts.mode, what)? else {
        return Ok(Err(init));
    };
    match size_and_map(&file, opts.mode, Geometry::of::<T>().total, what) {
        // SAFETY: the mapping is the full size of a fresh segment only this process knows is
        // being initialised (others wait for the READY state).
        Ok(mapping) => Ok(Ok(unsafe { ShmBox::initialise(mapping, init) })),
        Err(err) => {
            // SAFETY: `cname` is NUL-terminated; we created this name and it is unusable.
            unsafe { libc::shm_unlink(cname.as_ptr()) };
            Err(err)
        }
    }
}

fn size_and_map(file: &File, mode: u32, total: usize, what: &str) -> io::Result<Mapping> {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` is an open descriptor; fchmod sets the exact mode whatever the umask.
    if unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) } != 0 {
        return Err(last_os_error(format_args!("{what}: fchmod")));
    }
    file.set_len(total as u64)
        .map_err(|e| crate::sys::error::with_context(e, format_args!("{what}: ftruncate")))?;
    map(file, total, what)
}

fn map(file: &File, len: usize, what: &str) -> io::Result<Mapping> {
    memmap2::MmapOptions::new()
        .len(len)
        .map_raw(file)
        .map(Mapping::File)
        .map_err(|e| crate::sys::error::with_context(e, format_args!("{what}: mmap")))
}

pub(crate) fn open<T: ShmSafe>(opts: &ShmOptions, name: &str) -> io::Result<ShmBox<T>> {
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    check_segment_align::<T>(&what)?;
    match try_open(opts, &cname, &what)? {
        Some(boxed) => Ok(boxed),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: no such segment"),
        )),
    }
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
    let len = checked_len(&file, opts, what)?;
    let mapping = map(&file, len, what)?;
    // SAFETY: `len` bytes, at least a header, are mapped.
    unsafe { ShmBox::validated(mapping, len, what, opts) }.map(Some)
}

/// The segment's size after checking its owner, waiting briefly for a creator to size it.
fn checked_len(file: &File, opts: &ShmOptions, what: &str) -> io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let sized_by = Deadline::after(SIZING_GRACE.min(opts.init_timeout));
    loop {
        let meta = file
            .metadata()
            .map_err(|e| crate::sys::error::with_context(e, format_args!("{what}: fstat")))?;
        if !opts.trusts(meta.uid()) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{what}: owned by uid {}, which is neither this user nor trusted \
                     (see ShmOptions::trust_owner)",
                    meta.uid()
                ),
            ));
        }
        let len = meta.size();
        if len >= HEADER_SIZE as u64 {
            return usize::try_from(len)
                .map_err(|_| invalid_data(format!("{what}: {len} bytes is too large to map")));
        }
        if len != 0 || sized_by.map_or(true, Deadline::passed) {
            return Err(invalid_data(format!(
                "{what}: {len} bytes, too small for a {HEADER_SIZE}-byte header"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub(crate) fn open_or_create<T: ShmSafe>(
    opts: &ShmOptions,
    name: &str,
    init: impl FnOnce() -> T,
) -> io::Result<ShmBox<T>> {
    let cname = check_name(name)?;
    let what = format!("segment {name}");
    check_segment_align::<T>(&what)?;
    let mut init = init;
    // Each round either opens the segment, creates it, or sees it vanish (unlinked between
    // our two calls) and tries again.
    for _ in 0..1000 {
        if let Some(boxed) = try_open(opts, &cname, &what)? {
            return Ok(boxed);
        }
        match try_create(opts, &cname, &what, init)? {
            Ok(boxed) => return Ok(boxed),
            Err(back) => init = back,
        }
    }
    Err(io::Error::other(format!(
        "{what}: kept appearing and disappearing while being opened"
    )))
}

pub(crate) fn unlink(name: &str) -> io::Result<()> {
    let cname = check_name(name)?;
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    if unsafe { libc::shm_unlink(cname.as_ptr()) } != 0 {
        return Err(last_os_error(format_args!("segment {name}: shm_unlink")));
    }
    Ok(())
}
