//! Segments that other programs made, without a shmsync header: System V by key or id, POSIX
//! by name, or any shared-memory file descriptor, mapped whole and read at offsets.

use core::mem::ManuallyDrop;
use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;

use super::map::Mapping;
use super::{check_value, posix, robust, sysv, zones, ShmOptions, SysvKey};
use crate::sys::error::{invalid_data, invalid_input, with_context};
use crate::{BitPatterns, ShmSafe};

/// A shared-memory segment made by another program — a C program's System V segment, a
/// POSIX segment or a memfd — mapped whole, with no shmsync header: its layout is whatever
/// its maker and you agree on. Unmaps (or detaches) on drop.
///
/// Opening checks the owner and writers as [`ShmOptions`] says (a C program's segment is
/// often mode `0666`: accept that with
/// [`allow_group_or_other_write`](ShmOptions::allow_group_or_other_write)); typed access
/// checks that the value lies within the segment, aligned. Nothing says what the bytes mean:
/// [`get`](Self::get) takes types whose bytes it can check, and anything else (a C struct
/// holding a `pthread_mutex_t`, as a [`CMutex`](crate::interop::CMutex)) goes through the
/// unsafe [`get_unchecked`](Self::get_unchecked).
///
/// Memory of a `ForeignSegment` is a place where robust mutexes are sound: when it drops
/// while a thread's robust list still points into it (a guard leaked with `mem::forget`), it
/// keeps the memory mapped for the rest of the process instead of unmapping it.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use shmsync::interop::ForeignSegment;
/// use shmsync::{ShmOptions, SysvKey};
///
/// // A C program's `shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600)`.
/// // SAFETY: shmget only reads its integer arguments.
/// let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
/// assert!(id >= 0);
/// let seg = ForeignSegment::sysv_attach(id, &ShmOptions::new()).unwrap();
/// assert_eq!(seg.len(), 4096);
/// let word: &AtomicU32 = seg.get(8).unwrap();
/// word.fetch_add(1, Ordering::Relaxed);
/// assert!(seg.get::<AtomicU32>(4094).is_err()); // past the end
/// assert!(seg.get::<AtomicU32>(2).is_err()); // misaligned
/// // SAFETY: IPC_RMID takes no buffer.
/// unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
/// ```
pub struct ForeignSegment {
    mapping: ManuallyDrop<Mapping>,
    /// The mapping's registration as a place for robust mutexes.
    zone: Option<zones::Zone>,
    /// What the segment is, for messages.
    what: String,
}

// SAFETY: the handle gives out references only through `get`, whose types are `Sync` where
// they are shared, and raw pointers; the mapping is usable from any thread.
unsafe impl Send for ForeignSegment {}
// SAFETY: as above.
unsafe impl Sync for ForeignSegment {}

impl ForeignSegment {
    /// Attaches the System V segment with key `key` (`shmget(key, 0, 0)`, then `shmat`).
    ///
    /// # Errors
    ///
    /// `NotFound` when no segment has the key; `InvalidInput` for `SysvKey::Private`;
    /// `PermissionDenied` for an owner or writers `opts` does not trust; `InvalidData` for an
    /// empty segment; the OS error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{interop::ForeignSegment, ShmOptions, SysvKey};
    /// let key = SysvKey::Key(0x5e6d_0001);
    /// let err = ForeignSegment::sysv_open(key, &ShmOptions::new()).err().unwrap();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn sysv_open(key: SysvKey, opts: &ShmOptions) -> io::Result<Self> {
        super::segments_supported("ForeignSegment::sysv_open")?;
        let what = key.describe();
        if key == SysvKey::Private {
            return Err(invalid_input(
                "IPC_PRIVATE names no existing segment: attach by id with sysv_attach",
            ));
        }
        match sysv::shmget(key, 0, 0, &what)? {
            Some(id) => ForeignSegment::attach_id(id, opts, what),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{what}: no such segment"),
            )),
        }
    }

    /// Attaches the System V segment `shmid`.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown or removed id; otherwise as for
    /// [`sysv_open`](Self::sysv_open).
    ///
    /// # Examples
    ///
    /// See [`ForeignSegment`].
    pub fn sysv_attach(shmid: i32, opts: &ShmOptions) -> io::Result<Self> {
        super::segments_supported("ForeignSegment::sysv_attach")?;
        ForeignSegment::attach_id(shmid, opts, format!("System V segment id {shmid}"))
    }

    fn attach_id(id: i32, opts: &ShmOptions, what: String) -> io::Result<Self> {
        let len = sysv::checked_size(opts, id, &what)?;
        non_empty(len, &what)?;
        let mapping = sysv::shmat(id, len, &what)?;
        Ok(ForeignSegment::wrap(mapping, what))
    }

    /// Opens and maps the POSIX named segment `name` (`shm_open(name, O_RDWR)`), whole.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad name (as for [`ShmBox::create`](crate::ShmBox::create));
    /// `NotFound`; otherwise as for [`sysv_open`](Self::sysv_open).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{interop::ForeignSegment, ShmOptions};
    /// let name = format!("/shmsync-doc-foreign-{}", std::process::id());
    /// let made = shmsync::ShmBox::create(&name, 7u64).unwrap();
    /// let seg = ForeignSegment::open(&name, &ShmOptions::new()).unwrap();
    /// assert!(seg.len() >= shmsync::ShmRef::<u64>::size_for()); // the header is just bytes here
    /// shmsync::unlink(&name).unwrap();
    /// # drop(made);
    /// ```
    pub fn open(name: &str, opts: &ShmOptions) -> io::Result<Self> {
        super::segments_supported("ForeignSegment::open")?;
        let cname = posix::check_name(name)?;
        let what = format!("segment {name}");
        let Some(file) = posix::shm_open(&cname, libc::O_RDWR, 0, &what)? else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{what}: no such segment"),
            ));
        };
        ForeignSegment::map_file(&file, opts, what)
    }

    /// Maps the shared-memory file behind `fd` (a memfd, a `shm_open` descriptor, a file)
    /// whole, `MAP_SHARED`; `fd` is not kept.
    ///
    /// # Errors
    ///
    /// As for [`sysv_open`](Self::sysv_open), without `NotFound`. A memfd's mode is `0777`,
    /// so its writers check needs
    /// [`allow_group_or_other_write`](ShmOptions::allow_group_or_other_write) (only holders
    /// of a descriptor can reach it anyway).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use shmsync::{interop::ForeignSegment, ShmOptions};
    /// let file = tempfile_of(4096);
    /// let seg = ForeignSegment::from_fd(file.as_fd(), &ShmOptions::new()).unwrap();
    /// assert_eq!(seg.len(), 4096);
    /// # fn tempfile_of(len: u64) -> std::fs::File {
    /// #     let path = std::env::temp_dir().join(format!("shmsync-doc-fd-{}", std::process::id()));
    /// #     let f = std::fs::OpenOptions::new().read(true).write(true).create(true).open(&path).unwrap();
    /// #     std::fs::remove_file(&path).unwrap();
    /// #     f.set_len(len).unwrap();
    /// #     f
    /// # }
    /// ```
    pub fn from_fd(fd: BorrowedFd<'_>, opts: &ShmOptions) -> io::Result<Self> {
        super::segments_supported("ForeignSegment::from_fd")?;
        let what = format!("descriptor {fd:?}");
        let file = File::from(
            fd.try_clone_to_owned()
                .map_err(|e| with_context(e, format_args!("{what}: dup")))?,
        );
        ForeignSegment::map_file(&file, opts, what)
    }

    fn map_file(file: &File, opts: &ShmOptions, what: String) -> io::Result<Self> {
        let len = posix::owned_size(file, opts, &what)?;
        let len = usize::try_from(len)
            .map_err(|_| invalid_data(format!("{what}: {len} bytes is too large to map")))?;
        non_empty(len, &what)?;
        let mapping = posix::map(file, len, &what)?;
        Ok(ForeignSegment::wrap(mapping, what))
    }

    fn wrap(mapping: Mapping, what: String) -> Self {
        let (start, len) = mapping.span();
        ForeignSegment {
            mapping: ManuallyDrop::new(mapping),
            zone: Some(zones::Zone::register(start, len)),
            what,
        }
    }

    /// The segment's size in bytes (all of it is mapped).
    ///
    /// # Examples
    ///
    /// See [`ForeignSegment`].
    pub fn len(&self) -> usize {
        self.mapping.span().1
    }

    /// Always `false`: an empty segment cannot be opened.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::{interop::ForeignSegment, ShmOptions};
    /// # // SAFETY: shmget only reads its integer arguments.
    /// # let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o600) };
    /// let seg = ForeignSegment::sysv_attach(id, &ShmOptions::new()).unwrap();
    /// assert!(!seg.is_empty());
    /// # // SAFETY: IPC_RMID takes no buffer.
    /// # unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first byte of the mapping in this process (page-aligned).
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::{interop::ForeignSegment, ShmOptions};
    /// # // SAFETY: shmget only reads its integer arguments.
    /// # let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o600) };
    /// let seg = ForeignSegment::sysv_attach(id, &ShmOptions::new()).unwrap();
    /// assert_eq!(seg.as_ptr() as usize % 4096, 0);
    /// # // SAFETY: IPC_RMID takes no buffer.
    /// # unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.mapping.as_ptr()
    }

    /// A pointer to a `T` at `offset`, checked to lie within the segment and to be aligned:
    /// the place to [`CMutex::init`](crate::interop::CMutex::init) a mutex, say.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when a `T` at `offset` would reach past the end or be misaligned.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::{interop::ForeignSegment, ShmOptions};
    /// # // SAFETY: shmget only reads its integer arguments.
    /// # let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 64, libc::IPC_CREAT | 0o600) };
    /// let seg = ForeignSegment::sysv_attach(id, &ShmOptions::new()).unwrap();
    /// assert!(seg.place::<u64>(56).is_ok());
    /// assert!(seg.place::<u64>(60).is_err());
    /// # // SAFETY: IPC_RMID takes no buffer.
    /// # unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    /// ```
    pub fn place<T>(&self, offset: usize) -> io::Result<*mut T> {
        let (size, align) = (core::mem::size_of::<T>(), core::mem::align_of::<T>());
        let fits = offset
            .checked_add(size)
            .is_some_and(|end| end <= self.len());
        if !fits {
            return Err(invalid_input(format!(
                "{}: a {size}-byte {} at offset {offset} reaches past its {} bytes",
                self.what,
                core::any::type_name::<T>(),
                self.len()
            )));
        }
        // SAFETY: `offset + size <= len`, so the result lies within the mapping.
        let ptr = unsafe { self.as_ptr().add(offset) };
        if (ptr as usize) % align != 0 {
            return Err(invalid_input(format!(
                "{}: offset {offset} is not aligned to {align} bytes for a {}",
                self.what,
                core::any::type_name::<T>()
            )));
        }
        Ok(ptr.cast())
    }

    /// The `T` at `offset`, after checking its place (as [`place`](Self::place)) and its
    /// bytes, for a `T` whose bytes can be checked.
    ///
    /// A type whose bytes cannot be checked ([`BitPatterns::Unchecked`]) does not compile
    /// here; use [`get_unchecked`](Self::get_unchecked). As with any segment, every process
    /// that can write it is trusted not to store invalid values later.
    ///
    /// # Errors
    ///
    /// `InvalidInput` as for [`place`](Self::place); `InvalidData` when the bytes are not a
    /// valid `T` (a `bool` holding 2, say).
    ///
    /// # Examples
    ///
    /// See [`ForeignSegment`].
    pub fn get<T: ShmSafe>(&self, offset: usize) -> io::Result<&T> {
        #[allow(clippy::let_unit_value)]
        let () = Checkable::<T>::CHECKABLE;
        let ptr = self.place::<T>(offset)?;
        // SAFETY: `place` checked that the T lies within the mapping, aligned.
        unsafe { check_value(ptr, &self.what)? };
        // SAFETY: a valid T lies there (just checked) and the mapping lives as long as
        // `&self`.
        Ok(unsafe { &*ptr })
    }

    /// The `T` at `offset`, after checking its place (as [`place`](Self::place)) only.
    ///
    /// # Errors
    ///
    /// `InvalidInput` as for [`place`](Self::place).
    ///
    /// # Safety
    ///
    /// - The bytes at `offset` are a valid `T` for as long as the reference is used, whatever
    ///   any process writes meanwhile; writes that other processes make to it follow `T`'s own
    ///   synchronisation (its atomics or locks), never racing with this process's reads.
    /// - For a [`CMutex`](crate::interop::CMutex): the rules of
    ///   [`CMutex::from_ptr`](crate::interop::CMutex::from_ptr), except the one about keeping
    ///   the memory mapped, which the segment keeps itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::interop::{CMutex, CMutexOptions, ForeignSegment};
    /// use shmsync::ShmOptions;
    /// # // SAFETY: shmget only reads its integer arguments.
    /// # let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    /// let seg = ForeignSegment::sysv_attach(id, &ShmOptions::new()).unwrap();
    /// let place = seg.place::<CMutex<u64>>(0).unwrap();
    /// // SAFETY: nobody else uses the new segment yet; robust is fine in a ForeignSegment.
    /// unsafe { CMutex::init(place, 0u64, CMutexOptions::new()) }.unwrap();
    /// // SAFETY: initialised just above, process-shared, of the normal type.
    /// let m: &CMutex<u64> = unsafe { seg.get_unchecked(0) }.unwrap();
    /// *m.lock().unwrap().unwrap() += 1;
    /// # // SAFETY: IPC_RMID takes no buffer.
    /// # unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    /// ```
    pub unsafe fn get_unchecked<T>(&self, offset: usize) -> io::Result<&T> {
        let ptr = self.place::<T>(offset)?;
        // SAFETY: within the mapping and aligned (checked), a valid T (caller's contract);
        // the mapping lives as long as `&self`.
        Ok(unsafe { &*ptr })
    }
}

/// Refuses an empty segment: there is nothing to map.
fn non_empty(len: usize, what: &str) -> io::Result<()> {
    if len == 0 {
        return Err(invalid_data(format!("{what}: the segment is empty")));
    }
    Ok(())
}

/// Compile-time check on the `T`s that [`ForeignSegment::get`] takes.
struct Checkable<T>(core::marker::PhantomData<T>);

impl<T: ShmSafe> Checkable<T> {
    /// Evaluates to `()` only for a type whose bytes can be checked.
    const CHECKABLE: () = assert!(
        !matches!(T::BIT_PATTERNS, BitPatterns::Unchecked),
        "ForeignSegment::get takes only types whose bytes can be checked \
         (ShmSafe::BIT_PATTERNS is not Unchecked); use the unsafe get_unchecked"
    );
}

impl Drop for ForeignSegment {
    /// Unmaps (or detaches) the segment, unless a thread's robust list may still point into
    /// it: then the mapping stays for the rest of the process (see [`ForeignSegment`]).
    fn drop(&mut self) {
        // Unregistered first: once unmapped, the range may be reused.
        drop(self.zone.take());
        // SAFETY: `drop` runs once and nothing uses the mapping afterwards.
        let mapping = unsafe { ManuallyDrop::take(&mut self.mapping) };
        let (start, len) = mapping.span();
        if robust::may_be_listed(start, len) {
            core::mem::forget(mapping);
        } else {
            drop(mapping);
        }
    }
}

impl core::fmt::Debug for ForeignSegment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ForeignSegment")
            .field("segment", &self.what)
            .field("kind", &self.mapping.kind())
            .field("len", &self.len())
            .finish()
    }
}
