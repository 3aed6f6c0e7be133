//! System V segments: `ftok`, `shmget`, `shmat`, `shmdt`, `shmctl(IPC_STAT | IPC_RMID)`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

use super::fill::Fill;
use super::header::{Creator, Geometry, HEADER_SIZE};
use super::map::Mapping;
use super::{check_segment_align, named, ShmBox, ShmOptions};
use crate::sys::error::{invalid_data, invalid_input, last_os_error, with_context};
use crate::sys::liveness::{self, Verdict};
use crate::ShmSafe;

/// The key of a System V segment: a number agreed on by the processes (often from
/// [`ftok`](Self::ftok)), or `IPC_PRIVATE` for a new segment shared by id.
///
/// # Examples
///
/// ```
/// use shmsync::{ShmBox, SysvKey};
///
/// let key = SysvKey::ftok("/tmp", b'S').unwrap();
/// assert!(matches!(key, SysvKey::Key(_)));
/// let private = ShmBox::sysv_create(SysvKey::Private, 0u32).unwrap();
/// private.sysv_remove().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SysvKey {
    /// `IPC_PRIVATE`: always a new segment, found again by its id
    /// ([`ShmBox::sysv_id`], [`ShmBox::sysv_attach`]) or inherited across `fork`.
    Private,
    /// A `key_t` value (`i32` on Linux and macOS, `i64` on FreeBSD).
    Key(libc::key_t),
}

impl SysvKey {
    /// `ftok(path, proj_id)`: a key derived from an existing file's inode and a project byte.
    ///
    /// # Errors
    ///
    /// `NotFound` when `path` does not exist; `InvalidInput` for a zero `proj_id` or a path
    /// with a NUL byte.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmsync::SysvKey::ftok("/", 1).unwrap();
    /// let b = shmsync::SysvKey::ftok("/", 2).unwrap();
    /// assert_ne!(a, b);
    /// ```
    pub fn ftok(path: impl AsRef<Path>, proj_id: u8) -> io::Result<SysvKey> {
        let path = path.as_ref();
        if proj_id == 0 {
            return Err(invalid_input("ftok: proj_id must not be zero"));
        }
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| invalid_input(format!("ftok: path {path:?} contains a NUL byte")))?;
        // SAFETY: `cpath` is NUL-terminated and outlives the call.
        let key = unsafe { libc::ftok(cpath.as_ptr(), i32::from(proj_id)) };
        if key == -1 {
            return Err(last_os_error(format_args!("ftok({path:?}, {proj_id})")));
        }
        Ok(SysvKey::Key(key))
    }

    /// The key as `shmget` takes it.
    fn key_t(self) -> libc::key_t {
        match self {
            SysvKey::Private => libc::IPC_PRIVATE,
            SysvKey::Key(k) => k,
        }
    }

    pub(super) fn describe(self) -> String {
        match self {
            SysvKey::Private => "System V segment IPC_PRIVATE".to_string(),
            SysvKey::Key(k) => format!("System V segment key 0x{k:08x}"),
        }
    }
}

/// `shmget`; `Ok(None)` when exclusive creation finds the key taken or a lookup finds it
/// missing.
pub(super) fn shmget(key: SysvKey, size: usize, flags: i32, what: &str) -> io::Result<Option<i32>> {
    // SAFETY: shmget only reads its integer arguments.
    let id = unsafe { libc::shmget(key.key_t(), size, flags) };
    if id >= 0 {
        return Ok(Some(id));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) if flags & libc::IPC_EXCL != 0 => Ok(None),
        Some(libc::ENOENT) if flags & libc::IPC_CREAT == 0 => Ok(None),
        _ => Err(with_context(err, format_args!("{what}: shmget"))),
    }
}

pub(super) fn shmat(id: i32, len: usize, what: &str) -> io::Result<Mapping> {
    // SAFETY: attaching at an address of the kernel's choosing touches no existing memory.
    let ptr = unsafe { libc::shmat(id, core::ptr::null(), 0) };
    if ptr as isize == -1 {
        return Err(last_os_error(format_args!("{what}: shmat")));
    }
    let ptr = NonNull::new(ptr.cast()).expect("shmat does not return address 0");
    Ok(Mapping::Sysv { ptr, id, len })
}

pub(crate) fn remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer.
    if unsafe { libc::shmctl(id, libc::IPC_RMID, core::ptr::null_mut()) } != 0 {
        return Err(last_os_error(format_args!(
            "System V segment id {id}: IPC_RMID"
        )));
    }
    Ok(())
}

/// `IPC_STAT` of segment `id`; a removed or unknown id is `NotFound`.
fn stat(id: i32, what: &str) -> io::Result<libc::shmid_ds> {
    // SAFETY: shmid_ds is plain data for which all zeroes is valid.
    let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } == 0 {
        return Ok(ds);
    }
    let err = io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::EIDRM) => io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: no such segment ({err})"),
        ),
        _ => with_context(err, format_args!("{what}: IPC_STAT")),
    })
}

/// `shm_perm.mode` bit of a segment marked for removal (`IPC_RMID`) but still attached
/// (Linux).
const SHM_DEST: u32 = 0o1000;

/// Whether a segment has been marked for removal, where `IPC_STAT` tells.
fn is_removed(ds: &libc::shmid_ds) -> bool {
    cfg!(any(target_os = "linux", target_os = "android"))
        && u32::from(ds.shm_perm.mode) & SHM_DEST != 0
}

/// Whether the creator of segment `id` (its `shm_cpid`, which the kernel gives in this
/// process's PID namespace, or 0 where the creator has no number here) is still at work on
/// it. Only the kernel's "no such process" or "exited" counts as gone; a creator without a
/// number here is `Unknown`, and the header's liveness token decides once it is written.
fn creator_of(id: i32) -> Creator {
    let Ok(ds) = stat(id, "") else {
        return Creator::Unknown;
    };
    if is_removed(&ds) {
        return Creator::Withdrawn;
    }
    match (ds.shm_cpid, liveness::judge_visible_pid(ds.shm_cpid as u32)) {
        (0, _) => Creator::Unknown,
        (_, Verdict::Dead) => Creator::Gone,
        (_, Verdict::Alive) => Creator::Working,
    }
}

pub(crate) fn create<T: ShmSafe>(
    opts: &ShmOptions,
    key: SysvKey,
    fill: impl Fill<T>,
) -> io::Result<ShmBox<T>> {
    let what = key.describe();
    named::created(&what, try_create(opts, key, &what, fill))
}

/// Creates the segment for `key` and fills in its value with `init`, which runs only once the
/// segment is ours; `Ok(Err(init))` hands it back when the key is taken.
fn try_create<T: ShmSafe, F: Fill<T>>(
    opts: &ShmOptions,
    key: SysvKey,
    what: &str,
    init: F,
) -> io::Result<Result<ShmBox<T>, F>> {
    check_segment_align::<T>(what)?;
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | opts.mode as i32;
    let Some(id) = shmget(key, Geometry::of::<T>().total, flags, what)? else {
        return Ok(Err(init));
    };
    let discard = named::Discard::new(|| {
        let _ = remove(id);
    });
    let mapping = shmat(id, Geometry::of::<T>().total, what)?;
    // SAFETY: the segment was just created at full size and is zero-filled; openers
    // wait for the READY state before they trust it.
    let boxed = unsafe { ShmBox::initialise(mapping, init) };
    discard.keep();
    Ok(Ok(boxed))
}

pub(crate) fn open<T: ShmSafe>(opts: &ShmOptions, key: SysvKey) -> io::Result<ShmBox<T>> {
    let what = key.describe();
    named::opened(&what, try_open(opts, key, &what))
}

fn try_open<T: ShmSafe>(
    opts: &ShmOptions,
    key: SysvKey,
    what: &str,
) -> io::Result<Option<ShmBox<T>>> {
    if key == SysvKey::Private {
        return Err(invalid_input(
            "IPC_PRIVATE names no existing segment: attach by id with sysv_attach",
        ));
    }
    match shmget(key, 0, 0, what)? {
        Some(id) => attach_checked(opts, id, what).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn attach<T: ShmSafe>(opts: &ShmOptions, id: i32) -> io::Result<ShmBox<T>> {
    attach_checked(opts, id, &format!("System V segment id {id}"))
}

fn attach_checked<T: ShmSafe>(opts: &ShmOptions, id: i32, what: &str) -> io::Result<ShmBox<T>> {
    check_segment_align::<T>(what)?;
    let len = checked_len(opts, id, what)?;
    let mapping = shmat(id, len, what)?;
    // SAFETY: the segment is `len` bytes, at least a header, and is attached.
    unsafe { ShmBox::validated(mapping, len, what, opts, || creator_of(id)) }
}

/// The segment's size, at least a header's, as [`checked_size`] finds it.
fn checked_len(opts: &ShmOptions, id: i32, what: &str) -> io::Result<usize> {
    let len = checked_size(opts, id, what)?;
    if len < HEADER_SIZE {
        return Err(invalid_data(format!(
            "{what}: {len} bytes, too small for a {HEADER_SIZE}-byte header"
        )));
    }
    Ok(len)
}

/// The segment's size, from `IPC_STAT`, after checking its owner and its creator (who can
/// still write it after handing it to another owner with `IPC_SET`) and that no one else may
/// write it (unless the options say otherwise).
pub(super) fn checked_size(opts: &ShmOptions, id: i32, what: &str) -> io::Result<usize> {
    let ds = stat(id, what)?;
    let (uid, cuid) = (ds.shm_perm.uid, ds.shm_perm.cuid);
    opts.check_owner(uid, "owned", what)?;
    if cuid != uid {
        opts.check_owner(cuid, &format!("owned by uid {uid} but created"), what)?;
    }
    opts.check_writers(u32::from(ds.shm_perm.mode), what)?;
    Ok(ds.shm_segsz as usize)
}

/// Opens the segment for `key`, or creates it with `init`. As for POSIX segments, one whose
/// creator died before it was ready is `InvalidData` and is not removed here.
pub(crate) fn open_or_create<T: ShmSafe>(
    opts: &ShmOptions,
    key: SysvKey,
    init: impl Fill<T>,
) -> io::Result<ShmBox<T>> {
    let what = key.describe();
    if key == SysvKey::Private {
        return create(opts, key, init);
    }
    named::open_or_create(
        &what,
        || try_open(opts, key, &what),
        |init| try_create(opts, key, &what, init),
        init,
    )
}
