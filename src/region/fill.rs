//! How a creator fills the value of memory only it knows yet: by moving in a value built
//! elsewhere, or in place, on the zero bytes the memory already holds.

use core::ops::Deref;

use crate::{ShmSafe, ShmZeroable};

/// Fills a `T`'s place and wraps it in a handle (a `ShmBox` or `ShmRef`).
pub(crate) trait Fill<T> {
    /// Fills `*place` and returns the handle `wrap` makes of it.
    ///
    /// # Safety
    ///
    /// - `place` is aligned for `T`, valid for writes, and no one else reads or writes it
    ///   until this returns.
    /// - For [`InPlace`], the bytes at `place` are all zero.
    /// - `wrap` makes a handle to the `T` at `place`, asking only that a valid `T` lies there
    ///   when it is called and that nothing else reads or writes it while `Self` runs.
    unsafe fn fill<H: Deref<Target = T>>(self, place: *mut T, wrap: impl FnOnce() -> H) -> H;
}

/// A value built by the closure, then moved in (the `new`, `create`, `open_or_create` path).
pub(crate) struct Moved<F>(pub(crate) F);

impl<T: ShmSafe, F: FnOnce() -> T> Fill<T> for Moved<F> {
    unsafe fn fill<H: Deref<Target = T>>(self, place: *mut T, wrap: impl FnOnce() -> H) -> H {
        crate::shm_safe::assert_no_drop!(T);
        let value = (self.0)();
        // SAFETY: `place` is aligned and writable (caller's contract).
        unsafe { place.write(value) };
        wrap()
    }
}

/// The memory's zero bytes, then the closure's changes made in place (the `_zeroed` and
/// `_with` paths): nothing is built anywhere else, and pages the closure does not touch stay
/// untouched.
pub(crate) struct InPlace<F>(pub(crate) F);

impl<T: ShmZeroable, F: FnOnce(&mut T)> Fill<T> for InPlace<F> {
    unsafe fn fill<H: Deref<Target = T>>(self, place: *mut T, wrap: impl FnOnce() -> H) -> H {
        crate::shm_safe::assert_no_drop!(T);
        // Wrapped before the closure runs: if it panics, the handle's drop keeps memory that a
        // robust list points into (a pthread mutex locked and leaked inside it), and mutexes
        // that it locks are set up as they would be in the finished handle.
        let handle = wrap();
        // SAFETY: the bytes at `place` are zero (caller's contract), a valid `T` since it is
        // `ShmZeroable`, and nothing else reads or writes it while the closure runs; `handle`
        // is not used until the borrow ends.
        (self.0)(unsafe { &mut *place });
        handle
    }
}

/// [`InPlace`] for memory that may hold old bytes (a placement into the caller's memory):
/// zeroes the value's bytes first, which touches every page of it.
pub(crate) struct ZeroedFirst<F>(pub(crate) F);

impl<T: ShmZeroable, F: FnOnce(&mut T)> Fill<T> for ZeroedFirst<F> {
    unsafe fn fill<H: Deref<Target = T>>(self, place: *mut T, wrap: impl FnOnce() -> H) -> H {
        // SAFETY: `place` is aligned and writable for one `T` (caller's contract).
        unsafe { place.write_bytes(0, 1) };
        // SAFETY: the bytes at `place` are now zero; the rest is the caller's contract.
        unsafe { InPlace(self.0).fill(place, wrap) }
    }
}
