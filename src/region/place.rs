//! Placing a value into memory the application already maps.

use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;
use std::io;
use std::time::Duration;

use super::fill::{Fill, Moved};
use super::header::{self, Geometry};
use super::zones::BorrowedZone;
use crate::sys::error::invalid_input;
use crate::{BitPatterns, ShmSafe};

/// A validated `T` (with a shmsync header in front of it) inside memory the application
/// maps itself: a `memmap2::MmapMut`, or a pointer from C. Borrowed, not owned: dropping it
/// unmaps nothing.
///
/// Placement needs [`ShmRef::size_for`] bytes, aligned to 8 (or to `T`'s alignment if
/// larger); page-aligned mappings always qualify.
///
/// Pthread-backend primitives are placed only through the unsafe [`init`](Self::init) and
/// [`attach`](Self::attach): glibc keeps a robust mutex whose guard was leaked on its
/// thread's robust list and writes through it, so the memory must stay mapped as long as
/// that may be, which an `MmapMut` that safe code can drop cannot promise. In such a
/// placement the mutexes are robust (a holder's death poisons them), and dropping the
/// `ShmRef` while a robust list still points into the region aborts the process.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use shmsync::ShmRef;
///
/// let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
/// let placed = ShmRef::init_in(&mut map, 0, AtomicU32::new(5)).unwrap();
/// placed.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(placed.load(Ordering::Relaxed), 6);
/// ```
pub struct ShmRef<'a, T: ShmSafe> {
    value: NonNull<T>,
    /// For a `T` holding pthread-backend primitives (raw placements only): the region's
    /// registration as a place for robust mutexes, checked when it drops.
    _zone: Option<BorrowedZone>,
    _borrow: PhantomData<&'a T>,
}

// SAFETY: a `ShmRef` gives out `&T` only; sending or sharing it shares `T`.
unsafe impl<T: ShmSafe + Sync> Send for ShmRef<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe + Sync> Sync for ShmRef<'_, T> {}

impl<'a, T: ShmSafe> ShmRef<'a, T> {
    /// The bytes a placed `T` needs, header included.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::ShmRef::<u64>::size_for(), 136);
    /// ```
    pub const fn size_for() -> usize {
        Geometry::of::<T>().total
    }

    /// Writes a header and `value` at `offset` into `map`, for other processes mapping the
    /// same file to [`attach_in`](Self::attach_in). `map` must be a shared mapping (for example
    /// `MmapOptions::map_mut` of a file, not `map_anon`) for other processes to see it.
    ///
    /// A `T` holding pthread-backend primitives does not compile here; see [`ShmRef`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the region at `offset` is too small or misaligned.
    ///
    /// # Examples
    ///
    /// See [`ShmRef`]. A pthread-backend mutex needs the unsafe [`init`](Self::init):
    ///
    /// ```compile_fail
    /// let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
    /// let m = shmsync::pthread::ShmMutex::new(0u32);
    /// let _ = shmsync::ShmRef::init_in(&mut map, 0, m);
    /// ```
    pub fn init_in(map: &'a mut memmap2::MmapMut, offset: usize, value: T) -> io::Result<Self> {
        #[allow(clippy::let_unit_value)]
        let () = Placeable::<T>::NO_PTHREAD;
        let (ptr, len) = region(map.as_mut_ptr(), map.len(), offset)?;
        // SAFETY: `region` checked bounds; the exclusive borrow of `map` keeps the mapping
        // alive and stops this process from making other references into it for 'a.
        unsafe { ShmRef::init(ptr, len, value) }
    }

    /// Validates the header at `offset` in `map`, then the value's bytes, and borrows the `T`
    /// behind it.
    ///
    /// Safe code can write any bytes into an `MmapMut`, so the value is checked too: a `bool`
    /// or `char` (alone or as a field, element or a mutex's value) that holds a value it
    /// cannot take is refused. Types whose bytes cannot be checked
    /// ([`BitPatterns::Unchecked`](crate::BitPatterns::Unchecked): pthread-backend primitives,
    /// hand-written `ShmSafe` impls that do not say) do not compile here, nor do types
    /// holding pthread-backend primitives (see [`ShmRef`]); the unsafe
    /// [`attach`](Self::attach) takes them on the caller's word.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the region is too small or misaligned; `InvalidData` when it does
    /// not hold a `T` (another layout, not initialised, garbage, or a value whose bytes are
    /// not a valid `T`); `TimedOut` when its creator is still initialising it after 5 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmRef;
    /// let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
    /// drop(ShmRef::init_in(&mut map, 0, 7u64).unwrap());
    /// assert_eq!(*ShmRef::<u64>::attach_in(&mut map, 0).unwrap(), 7);
    /// assert!(ShmRef::<i64>::attach_in(&mut map, 0).is_err());
    /// ```
    ///
    /// A type whose bytes cannot be checked is refused at compile time:
    ///
    /// ```compile_fail
    /// use shmsync::ShmRef;
    /// let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
    /// let _ = ShmRef::<shmsync::pthread::ShmMutex<u64>>::attach_in(&mut map, 0);
    /// ```
    pub fn attach_in(map: &'a mut memmap2::MmapMut, offset: usize) -> io::Result<Self> {
        #[allow(clippy::let_unit_value)]
        let ((), ()) = (Placeable::<T>::NO_PTHREAD, Placeable::<T>::CHECKABLE);
        let (ptr, len) = region(map.as_mut_ptr(), map.len(), offset)?;
        // SAFETY: as for `init_in`.
        unsafe { ShmRef::attach(ptr, len) }
    }

    /// Writes a header and `value` at `ptr`, a region of `len` bytes that the caller maps.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `len` is below [`size_for`](Self::size_for) or `ptr` is misaligned.
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for reads and writes of `len` bytes for the lifetime `'a`, and stays
    ///   mapped that long.
    /// - No other process trusts the region until this call returns, and nothing in this
    ///   process reads or writes it except through the returned `ShmRef` during `'a`.
    /// - When `T` holds pthread-backend primitives: the region stays mapped until the
    ///   returned `ShmRef` is dropped, and for the rest of the process if it is leaked
    ///   instead (`mem::forget`). The drop aborts the process if a robust list still points
    ///   into the region, so once it has returned, the region may go.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmRef;
    /// let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
    /// // SAFETY: the 4096-byte mapping outlives `placed` and is used only through it.
    /// let placed = unsafe { ShmRef::init(map.as_mut_ptr(), map.len(), 3u16) }.unwrap();
    /// assert_eq!(*placed, 3);
    /// ```
    ///
    /// A pthread-backend mutex, set up robust:
    ///
    /// ```
    /// use shmsync::{pthread::ShmMutex, ShmRef};
    /// let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
    /// // SAFETY: the mapping outlives `placed` (dropped first, not leaked) and is used only
    /// // through it.
    /// let placed = unsafe { ShmRef::init(map.as_mut_ptr(), map.len(), ShmMutex::new(0u8)) };
    /// let placed = placed.unwrap();
    /// *placed.lock().unwrap() += 1;
    /// drop(placed);
    /// drop(map);
    /// ```
    pub unsafe fn init(ptr: *mut u8, len: usize, value: T) -> io::Result<Self> {
        // SAFETY: the caller's contract is this one's.
        unsafe { ShmRef::init_filled(ptr, len, Moved(|| value), "ShmRef::init") }
    }

    /// Writes a header at `ptr`, then the value `fill` makes, and publishes it.
    ///
    /// # Safety
    ///
    /// - As for [`init`](Self::init).
    /// - For [`InPlace`](super::fill::InPlace), the value's bytes at
    ///   `ptr + Geometry::of::<T>().offset` are all zero (use
    ///   [`ZeroedFirst`](super::fill::ZeroedFirst) otherwise).
    pub(super) unsafe fn init_filled(
        ptr: *mut u8,
        len: usize,
        fill: impl Fill<T>,
        what: &str,
    ) -> io::Result<Self> {
        super::segments_supported(what)?;
        check::<T>(ptr, len)?;
        let offset = Geometry::of::<T>().offset;
        // SAFETY: `check` proved the region large and aligned enough; the caller vouches for
        // its validity and that no one else trusts it yet.
        unsafe { header::begin_init::<T>(ptr) };
        // SAFETY: as above; `offset` is aligned for T and within the region.
        let place = unsafe { ptr.add(offset) }.cast::<T>();
        // SAFETY: `place` is aligned, writable and unshared (caller's contract); `at` is
        // called once the value is in place.
        let placed = unsafe { fill.fill(place, || ShmRef::at(ptr, offset)) };
        // SAFETY: the header was written above and the value is in place.
        unsafe { header::finish_init(ptr) };
        Ok(placed)
    }

    /// Validates the header at `ptr` (a region of `len` bytes) and borrows the `T` behind it.
    /// Reads only.
    ///
    /// The value's bytes are checked as in [`attach_in`](Self::attach_in) when `T`'s can be;
    /// for a type whose bytes cannot be checked
    /// ([`BitPatterns::Unchecked`](crate::BitPatterns::Unchecked), such as a pthread-backend
    /// mutex, whose C library internals hold pointers and flags that glibc writes through),
    /// the caller vouches for them.
    ///
    /// # Errors
    ///
    /// As for [`attach_in`](Self::attach_in).
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for reads and writes of `len` bytes for the lifetime `'a`, and stays
    ///   mapped that long.
    /// - Nothing in this process reads or writes the region except through `ShmRef`s during
    ///   `'a`.
    /// - When `T` holds pthread-backend primitives: the region stays mapped until the
    ///   returned `ShmRef` is dropped, as for [`init`](Self::init).
    /// - When `T::BIT_PATTERNS` is `Unchecked`: the value's bytes were written by shmsync
    ///   (placed by [`init`](Self::init) or [`init_in`](Self::init_in), or by a `ShmBox`) and
    ///   have since been changed only by shmsync's own operations on it, in this process or in
    ///   any other that maps them; no code wrote the region's bytes by other means.
    ///
    /// # Examples
    ///
    /// See [`attach_in`](Self::attach_in).
    pub unsafe fn attach(ptr: *mut u8, len: usize) -> io::Result<Self> {
        super::segments_supported("ShmRef::attach")?;
        check::<T>(ptr, len)?;
        let what = format!("placed region at {ptr:p}");
        // Memory the application maps itself has no creator to ask about.
        let creator = || header::Creator::Unknown;
        // SAFETY: `check` proved `len` covers a header; the caller vouches for the region.
        unsafe { header::validate::<T>(ptr, len, &what, Duration::from_secs(5), creator)? };
        let offset = Geometry::of::<T>().offset;
        // SAFETY: the header was validated for T, so T's bytes lie at `offset`, aligned.
        unsafe { super::check_value(ptr.add(offset).cast::<T>(), &what)? };
        // SAFETY: the header and (where it can be checked) the value were validated for T.
        Ok(unsafe { ShmRef::at(ptr, offset) })
    }

    /// # Safety
    ///
    /// - A published, validated `T` lies at `base + offset` and stays valid for `'a`.
    unsafe fn at(base: *mut u8, offset: usize) -> Self {
        // SAFETY: per the contract, the offset is within the region.
        let value = unsafe { base.add(offset) }.cast::<T>();
        // Registered before any lock can be taken in it; see `BorrowedZone`.
        let zone = super::holds_pthread::<T>()
            .then(|| BorrowedZone::register(base as usize, Geometry::of::<T>().total));
        ShmRef {
            value: NonNull::new(value).expect("placed regions are not at address 0"),
            _zone: zone,
            _borrow: PhantomData,
        }
    }
}

/// Compile-time checks on the `T`s that the safe placement functions take.
pub(super) struct Placeable<T>(PhantomData<T>);

impl<T: ShmSafe> Placeable<T> {
    /// Evaluates to `()` only for a type without pthread-backend primitives.
    pub(super) const NO_PTHREAD: () = assert!(
        !super::holds_pthread::<T>(),
        "ShmRef::init_in and ShmRef::attach_in do not take pthread-backend primitives: the \
         MmapMut could be unmapped while glibc's robust list still points into it; use the \
         unsafe ShmRef::init and ShmRef::attach"
    );
    /// Evaluates to `()` only for a type whose placed bytes can be checked.
    const CHECKABLE: () = assert!(
        !matches!(T::BIT_PATTERNS, BitPatterns::Unchecked),
        "ShmRef::attach_in takes only types whose bytes can be checked (ShmSafe::BIT_PATTERNS \
         is not Unchecked); use the unsafe ShmRef::attach"
    );
}

/// The sub-region of a mapping starting at `offset`.
pub(super) fn region(base: *mut u8, len: usize, offset: usize) -> io::Result<(*mut u8, usize)> {
    if offset > len {
        return Err(invalid_input(format!(
            "offset {offset} lies beyond the {len}-byte mapping"
        )));
    }
    // SAFETY: `offset <= len`, so the result stays within (or one past) the mapping.
    Ok((unsafe { base.add(offset) }, len - offset))
}

fn check<T: ShmSafe>(ptr: *mut u8, len: usize) -> io::Result<()> {
    let need = Geometry::of::<T>();
    let align = core::mem::align_of::<T>().max(8);
    if ptr.is_null() || (ptr as usize) % align != 0 {
        return Err(invalid_input(format!(
            "placement at {ptr:p}: needs {align}-byte alignment"
        )));
    }
    if len < need.total {
        return Err(invalid_input(format!(
            "placement at {ptr:p}: {len} bytes, needs {}",
            need.total
        )));
    }
    Ok(())
}

impl<T: ShmSafe> Deref for ShmRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the value was written or validated when the ShmRef was made and the caller
        // keeps the region mapped for 'a.
        unsafe { self.value.as_ref() }
    }
}
