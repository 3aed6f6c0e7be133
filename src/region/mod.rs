//! Shared memory that holds a value: anonymous (shared with children forked later), POSIX
//! named, System V, memfd (passed on as a file descriptor), and placement into memory the
//! application already maps.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;
use std::io;

use crate::{BitPatterns, ShmSafe};

mod fill;
crate::sync::native_only! {
    mod foreign;
    pub use foreign::ForeignSegment;
}
mod header;
mod in_place;
mod inspect;
mod map;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod memfd;
mod named;
mod options;
mod place;
mod place_in_place;
mod posix;
mod robust;
mod shortcuts;
mod sysv;
pub(crate) mod zones;

pub use inspect::{segment_info, SegmentInfo, SegmentState};
pub use options::ShmOptions;
pub use place::ShmRef;
pub use shortcuts::{segment_in_use, unlink, unlink_unused};
pub use sysv::SysvKey;

use fill::Fill;
use map::Mapping;

/// Shared memory holding one `T`: an owning handle that unmaps (or detaches) on drop.
///
/// `ShmBox` derefs to `&T` only: mutation goes through the shared primitives and atomics
/// inside `T`. It never runs a destructor of the shared value (`ShmSafe` types have none).
///
/// - [`new`](Self::new): anonymous `MAP_SHARED` memory that children forked later share.
/// - [`create`](Self::create), [`open`](Self::open), [`open_or_create`](Self::open_or_create),
///   [`unlink`](Self::unlink): POSIX named segments (`shm_open`), with a validated header.
/// - [`sysv_create`](Self::sysv_create), [`sysv_open`](Self::sysv_open),
///   [`sysv_open_or_create`](Self::sysv_open_or_create), [`sysv_attach`](Self::sysv_attach),
///   [`sysv_remove`](Self::sysv_remove): System V
///   segments (`shmget`, `shmat`, `shmctl(IPC_RMID)`).
/// - [`memfd_create`](Self::memfd_create), [`from_fd`](Self::from_fd),
///   [`memfd`](Self::memfd): memfd segments (Linux), sealed at their size and passed to
///   other processes as a file descriptor (`SCM_RIGHTS`, or inherited); nothing to unlink.
/// - [`new_zeroed`](Self::new_zeroed), [`create_zeroed`](Self::create_zeroed),
///   [`new_with`](Self::new_with), [`open_or_create_with`](Self::open_or_create_with),
///   [`memfd_create_zeroed`](Self::memfd_create_zeroed) and
///   the other `_zeroed` and `_with` functions make a [`ShmZeroable`](crate::ShmZeroable) value
///   of any size in place, on the zeroed fresh memory: nothing is built on the stack and no
///   page of the value is touched.
/// - [`ShmOptions`] chooses the mode, the owners and writers to trust and the init timeout.
/// - [`ShmRef`] places a value into memory the application already maps.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use shmsync::ShmBox;
///
/// let counter = ShmBox::new(AtomicU64::new(0)).unwrap();
/// counter.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(counter.load(Ordering::Relaxed), 1);
/// ```
pub struct ShmBox<T: ShmSafe> {
    value: NonNull<T>,
    mapping: core::mem::ManuallyDrop<Mapping>,
    /// The mapping's registration as a place for robust mutexes, when `T` holds
    /// pthread-backend primitives (see `zones`).
    zone: Option<zones::Zone>,
    _owns: PhantomData<T>,
}

// SAFETY: the handle gives out `&T` only; sending it to another thread is sharing `T`.
unsafe impl<T: ShmSafe + Sync> Send for ShmBox<T> {}
// SAFETY: as above: `&ShmBox<T>` is `&T`.
unsafe impl<T: ShmSafe + Sync> Sync for ShmBox<T> {}

impl<T: ShmSafe> ShmBox<T> {
    /// Moves `value` into anonymous `MAP_SHARED` memory, shared with every child forked after
    /// this call.
    ///
    /// Under `--cfg shmsync_loom` the value goes into heap memory instead, and the named,
    /// System V and placement functions return an `Unsupported` error (see `shmsync::loom`).
    ///
    /// # Errors
    ///
    /// The OS error of `mmap` (for example `OutOfMemory`).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmsync::ShmBox::new(42u32).unwrap();
    /// assert_eq!(*b, 42);
    /// ```
    pub fn new(value: T) -> io::Result<Self> {
        ShmBox::new_filled(fill::Moved(|| value))
    }

    /// A fresh anonymous shared mapping (zero-filled by the kernel) holding the `T` that
    /// `fill` puts there.
    fn new_filled(fill: impl Fill<T>) -> io::Result<Self> {
        let align = core::mem::align_of::<T>();
        // Mappings are page-aligned; a T aligned more strictly gets room to be moved up.
        let slack = if align > map::page_size() { align } else { 0 };
        let len = core::mem::size_of::<T>().max(1) + slack;
        let mapping = Mapping::for_new_box(len)?;
        let offset = mapping.as_ptr().align_offset(align);
        // SAFETY: `offset < align <= slack` (or 0), so the T lies within the fresh mapping.
        let ptr = unsafe { mapping.as_ptr().add(offset) }.cast::<T>();
        // SAFETY: `ptr` is aligned for T, in bounds, zero-filled, and the fresh mapping is
        // unshared; `from_mapping` is called once the value is in place.
        Ok(unsafe { fill.fill(ptr, || ShmBox::from_mapping(mapping, offset)) })
    }

    /// Wraps a mapping whose bytes at `offset` hold an initialised, validated `T`.
    ///
    /// # Safety
    ///
    /// - `mapping` holds a valid `T` at `offset`, suitably aligned.
    unsafe fn from_mapping(mapping: Mapping, offset: usize) -> Self {
        // SAFETY: the caller vouches that the offset is within the mapping.
        let ptr = unsafe { mapping.as_ptr().add(offset) }.cast::<T>();
        // Registered before any lock can be taken in it: its drop keeps the mapping while a
        // robust list points into it, so robust mutexes are sound there.
        let zone = holds_pthread::<T>().then(|| {
            let (start, len) = mapping.span();
            zones::Zone::register(start, len)
        });
        ShmBox {
            value: NonNull::new(ptr).expect("mappings are never at address 0"),
            mapping: core::mem::ManuallyDrop::new(mapping),
            zone,
            _owns: PhantomData,
        }
    }

    /// Writes the header into a freshly created segment, then fills in the value, and
    /// publishes it.
    ///
    /// `fill` runs after the header says `INITIALIZING | token`, so that openers racing a slow
    /// init closure wait for this live creator instead of calling the still all-zero segment
    /// garbage. A panic of the closure unwinds through here, releasing the mapping and leaving
    /// the state `INITIALIZING`; the caller's [`named::Discard`] then removes the segment.
    ///
    /// # Safety
    ///
    /// - `mapping` is at least `Geometry::of::<T>().total` writable, zero-filled bytes that
    ///   this process just created and no other process trusts yet.
    unsafe fn initialise(mapping: Mapping, fill: impl Fill<T>) -> Self {
        let base = mapping.as_ptr();
        let offset = header::Geometry::of::<T>().offset;
        // SAFETY: per the contract, the mapping is large enough and not yet trusted by others.
        unsafe { header::begin_init::<T>(base) };
        // SAFETY: `offset` is aligned for T and the value fits in the zero-filled mapping,
        // which others do not touch before READY.
        let place = unsafe { base.add(offset) }.cast::<T>();
        // SAFETY: as above; `from_mapping` is called once the value is in place.
        let boxed = unsafe { fill.fill(place, || ShmBox::from_mapping(mapping, offset)) };
        // SAFETY: the header was written by `begin_init` above and the value is in place.
        unsafe { header::finish_init(base) };
        boxed
    }

    /// Validates the header of an opened segment of `len` bytes and wraps it; `creator` says
    /// whether the segment's creator is still at work while it is not ready.
    ///
    /// # Safety
    ///
    /// - `mapping` maps at least `len` bytes, and `len >= header::HEADER_SIZE`.
    unsafe fn validated(
        mapping: Mapping,
        len: usize,
        what: &str,
        opts: &ShmOptions,
        creator: impl FnMut() -> header::Creator,
    ) -> io::Result<Self> {
        let (base, timeout) = (mapping.as_ptr(), opts.init_timeout);
        // SAFETY: per the contract, `len` readable bytes (at least a header) are mapped.
        unsafe { header::validate::<T>(base, len, what, timeout, creator)? };
        let offset = header::Geometry::of::<T>().offset;
        // SAFETY: the header was validated for T, so T's bytes lie at `offset`, aligned.
        unsafe { check_value(base.add(offset).cast::<T>(), what)? };
        // SAFETY: the header was validated for T, so a published T lies at `offset`.
        Ok(unsafe { ShmBox::from_mapping(mapping, offset) })
    }

    /// The System V segment id, for a box made by the `sysv_` functions.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmsync::ShmBox::new(0u8).unwrap();
    /// assert_eq!(b.sysv_id(), None);
    /// ```
    pub fn sysv_id(&self) -> Option<i32> {
        self.mapping.sysv_id()
    }
}

/// Named, System V and placed segments need memory that other processes map; a loom model
/// (`--cfg shmsync_loom`) has no other process, so they return `Unsupported` there.
#[inline]
fn segments_supported(what: &str) -> io::Result<()> {
    if !crate::sync::MODELLED {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what}: shared-memory segments are not modelled under --cfg shmsync_loom; use ShmBox::new or an Arc"),
    ))
}

/// Whether a `T` holds pthread-backend primitives, whose mutexes may be robust.
const fn holds_pthread<T: ShmSafe>() -> bool {
    T::BACKENDS & crate::BackendId::Pthread.bit() != 0
}

/// Refuses the bytes at `value` when they are not a valid `T` (a forged `bool` or `char`,
/// say). Types whose bytes cannot be checked ([`BitPatterns::Unchecked`]) pass: whoever
/// trusts them vouches for them.
///
/// # Safety
///
/// - `value` is aligned for `T` and valid for reads of `size_of::<T>()` initialised bytes.
unsafe fn check_value<T: ShmSafe>(value: *const T, what: &str) -> io::Result<()> {
    if T::BIT_PATTERNS != BitPatterns::Checked {
        return Ok(());
    }
    // SAFETY: `value` is aligned and readable (caller's contract).
    if unsafe { T::is_valid_bit_pattern(value) } {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{what}: the bytes of the value are not a valid {} (a bool or char field holds \
             a value it cannot take)",
            core::any::type_name::<T>()
        ),
    ))
}

/// Refuses a `T` aligned beyond the page size for a segment that each process maps at an
/// address of the kernel's choosing: only page alignment is guaranteed there.
fn check_segment_align<T>(what: &str) -> io::Result<()> {
    let align = core::mem::align_of::<T>();
    if align > map::page_size() {
        return Err(crate::sys::error::invalid_input(format!(
            "{what}: a value aligned to {align} bytes cannot be placed in a named or System V \
             segment, whose mappings are aligned only to the {}-byte page size",
            map::page_size()
        )));
    }
    Ok(())
}

impl<T: ShmSafe> Drop for ShmBox<T> {
    /// Unmaps (or detaches) the memory; the shared value's destructor never runs.
    ///
    /// Memory holding pthread-backend mutexes stays mapped (is leaked) when a thread's robust
    /// list may still point into it: a mutex whose guard was leaked with `mem::forget` stays
    /// on glibc's list, which glibc and the kernel write through (see `docs/design.md`).
    fn drop(&mut self) {
        // Unregistered first: once unmapped, the range may be reused by memory that is not
        // kept mapped like this.
        drop(self.zone.take());
        // SAFETY: `drop` runs once and nothing uses the mapping afterwards.
        let mapping = unsafe { core::mem::ManuallyDrop::take(&mut self.mapping) };
        let (start, len) = mapping.span();
        if holds_pthread::<T>() && robust::may_be_listed(start, len) {
            core::mem::forget(mapping);
        } else {
            drop(mapping);
        }
    }
}

impl<T: ShmSafe> Deref for ShmBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the value was initialised (or validated) when the box was made, and the
        // mapping stays until the box drops.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmBox")
            .field("kind", &self.mapping.kind())
            .field("value", &**self)
            .finish()
    }
}
