//! Big values placed in place: the `_zeroed` and `_with` placements of `ShmRef`, for
//! [`ShmZeroable`] types.
//!
//! Memory the application maps may hold old bytes, so these write zeros over the value
//! first (one `memset`, touching every page of it) instead of relying on fresh pages; what
//! they save is building the value anywhere else.

use std::io;

use super::fill::ZeroedFirst;
use super::place::{region, Placeable};
use super::ShmRef;
use crate::ShmZeroable;

impl<'a, T: ShmZeroable> ShmRef<'a, T> {
    /// [`init_in`](Self::init_in) of an all-zero `T`: writes a header and zeroes the value's
    /// bytes at `offset` in `map`, without building the value anywhere else.
    ///
    /// A `T` holding pthread-backend primitives does not compile here; see [`ShmRef`].
    ///
    /// # Errors
    ///
    /// As for [`init_in`](Self::init_in).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmMutex, ShmRef};
    /// type Table = [ShmMutex<u64>; 100_000];
    /// let mut map = memmap2::MmapMut::map_anon(ShmRef::<Table>::size_for()).unwrap();
    /// let table = ShmRef::<Table>::init_zeroed_in(&mut map, 0).unwrap();
    /// *table[99_999].lock().unwrap() = 1;
    /// ```
    pub fn init_zeroed_in(map: &'a mut memmap2::MmapMut, offset: usize) -> io::Result<Self> {
        ShmRef::init_with_in(map, offset, |_| {})
    }

    /// [`init_zeroed_in`](Self::init_zeroed_in), then `init` on the value in place before the
    /// header says it is ready.
    ///
    /// # Errors
    ///
    /// As for [`init_in`](Self::init_in).
    ///
    /// # Panics
    ///
    /// A panic of `init` goes on to the caller; the header then never says the value is
    /// ready, so [`attach_in`](Self::attach_in) of the region fails (`TimedOut` while this
    /// process lives, `InvalidData` once it has exited).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmRef;
    /// let mut map = memmap2::MmapMut::map_anon(ShmRef::<[u32; 1 << 16]>::size_for()).unwrap();
    /// let placed = ShmRef::<[u32; 1 << 16]>::init_with_in(&mut map, 0, |v| v[3] = 3).unwrap();
    /// assert_eq!(placed[3], 3);
    /// ```
    pub fn init_with_in(
        map: &'a mut memmap2::MmapMut,
        offset: usize,
        init: impl FnOnce(&mut T),
    ) -> io::Result<Self> {
        #[allow(clippy::let_unit_value)]
        let () = Placeable::<T>::NO_PTHREAD;
        let (ptr, len) = region(map.as_mut_ptr(), map.len(), offset)?;
        // SAFETY: `region` checked bounds; the exclusive borrow of `map` keeps the mapping
        // alive and stops this process from making other references into it for 'a.
        unsafe { ShmRef::init_with(ptr, len, init) }
    }

    /// [`init`](Self::init) of an all-zero `T`: writes a header and zeroes the value's bytes
    /// at `ptr`.
    ///
    /// # Errors
    ///
    /// As for [`init`](Self::init).
    ///
    /// # Safety
    ///
    /// As for [`init`](Self::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{pthread::ShmMutex, ShmRef};
    /// type Locks = [ShmMutex<u32>; 1000];
    /// let mut map = memmap2::MmapMut::map_anon(ShmRef::<Locks>::size_for()).unwrap();
    /// // SAFETY: the mapping outlives `locks` (dropped first, not leaked) and is used only
    /// // through it.
    /// let locks = unsafe { ShmRef::<Locks>::init_zeroed(map.as_mut_ptr(), map.len()) }.unwrap();
    /// *locks[999].lock().unwrap() = 1;
    /// drop(locks);
    /// ```
    pub unsafe fn init_zeroed(ptr: *mut u8, len: usize) -> io::Result<Self> {
        // SAFETY: the caller's contract is this one's.
        unsafe { ShmRef::init_with(ptr, len, |_| {}) }
    }

    /// [`init_zeroed`](Self::init_zeroed), then `init` on the value in place before the
    /// header says it is ready.
    ///
    /// # Errors
    ///
    /// As for [`init`](Self::init).
    ///
    /// # Panics
    ///
    /// As for [`init_with_in`](Self::init_with_in).
    ///
    /// # Safety
    ///
    /// As for [`init`](Self::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmRef;
    /// let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
    /// // SAFETY: the mapping outlives `placed` and is used only through it.
    /// let placed = unsafe { ShmRef::<[u8; 64]>::init_with(map.as_mut_ptr(), 4096, |v| v[0] = 1) };
    /// assert_eq!(placed.unwrap()[0], 1);
    /// ```
    pub unsafe fn init_with(
        ptr: *mut u8,
        len: usize,
        init: impl FnOnce(&mut T),
    ) -> io::Result<Self> {
        // SAFETY: the caller's contract is `init`'s; `ZeroedFirst` zeroes the value's bytes.
        unsafe { ShmRef::init_filled(ptr, len, ZeroedFirst(init), "ShmRef::init_with") }
    }
}
