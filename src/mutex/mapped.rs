//! Guards narrowed to a part of the locked value: `ShmMutexGuard::map` and `try_map`.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use super::{release, ShmMutex, ShmMutexGuard};
use crate::backend::RawMutex;
use crate::sync::{Access, AtomicU32};

/// A held [`ShmMutex`] seen through a part of its value, made by [`ShmMutexGuard::map`] or
/// [`ShmMutexGuard::try_map`]; unlocks the mutex on drop. Generic over the backend; use the
/// aliases such as [`futex::MappedShmMutexGuard`](crate::futex::MappedShmMutexGuard).
///
/// It behaves as the guard it came from: a panic while it is held poisons the mutex, and it
/// is not `Send`. It cannot be given to a [`ShmCondvar`](crate::generic::ShmCondvar) wait
/// (a wait re-locks the whole mutex, whose value the mapped guard no longer knows), as with
/// std's mapped guards.
///
/// # Examples
///
/// ```
/// use shmsync::{ShmMutex, ShmMutexGuard};
///
/// let m = ShmMutex::new((0u32, [0u8; 4]));
/// let mut bytes = ShmMutexGuard::map(m.lock().unwrap(), |pair| &mut pair.1);
/// bytes[2] = 7;
/// drop(bytes);
/// assert_eq!(m.lock().unwrap().1, [0, 0, 7, 0]);
/// ```
#[must_use = "if unused the ShmMutex will immediately unlock"]
pub struct MappedShmMutexGuard<'a, U: ?Sized, R: RawMutex> {
    /// The part of the value this guard gives access to.
    data: NonNull<U>,
    raw: &'a R,
    poison: &'a AtomicU32,
    /// Whether this thread was already panicking when it locked.
    panicking: bool,
    /// The access to the whole value, taken over from the original guard.
    access: Access,
    /// Borrows `U` as `&'a mut U` does (and so is invariant in `U`); not `Send`.
    _marker: PhantomData<(&'a mut U, *const ())>,
}

// SAFETY: sharing the guard shares `&U` only, which is fine when `U: Sync`.
unsafe impl<U: ?Sized + Sync, R: RawMutex> Sync for MappedShmMutexGuard<'_, U, R> {}

impl<'a, T, R: RawMutex> ShmMutexGuard<'a, T, R> {
    /// Narrows the guard to the part of the value that `f` picks, keeping the lock held.
    ///
    /// An associated function (`ShmMutexGuard::map(guard, f)`) so that it does not hide a
    /// method of `T`. The mutex stays locked while `f` runs, and if `f` panics the original
    /// guard is dropped as the panic unwinds: the mutex is poisoned and unlocked.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmMutex, ShmMutexGuard};
    /// let m = ShmMutex::new([1u64, 2, 3]);
    /// let mut last = ShmMutexGuard::map(m.lock().unwrap(), |a| &mut a[2]);
    /// *last += 10;
    /// drop(last);
    /// assert_eq!(*m.lock().unwrap(), [1, 2, 13]);
    /// ```
    pub fn map<U: ?Sized, F>(orig: Self, f: F) -> MappedShmMutexGuard<'a, U, R>
    where
        F: FnOnce(&mut T) -> &mut U,
    {
        // SAFETY: `orig` proves this thread holds the lock, and nothing else uses the value
        // while `f` runs; `f` must return a reference valid for any lifetime it was given.
        let part = f(unsafe { &mut *orig.mutex.data.get() });
        let data = NonNull::from(part);
        // SAFETY: `part` is borrowed from the value (or is `'static`) and nobody else uses it.
        unsafe { orig.into_mapped(data) }
    }

    /// Narrows the guard to the part of the value that `f` picks, or gives it back unchanged
    /// when `f` returns `None`.
    ///
    /// As for [`map`](Self::map): the lock stays held, and a panic in `f` poisons and
    /// unlocks the mutex.
    ///
    /// # Errors
    ///
    /// `Err(orig)`, the guard as it was, when `f` returns `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmMutex, ShmMutexGuard};
    /// let m = ShmMutex::new([5u32; 4]);
    /// let guard = m.lock().unwrap();
    /// let guard = ShmMutexGuard::try_map(guard, |a| a.get_mut(9)).unwrap_err();
    /// let mut slot = ShmMutexGuard::try_map(guard, |a| a.get_mut(1)).unwrap();
    /// *slot = 6;
    /// drop(slot);
    /// assert_eq!(m.lock().unwrap()[1], 6);
    /// ```
    pub fn try_map<U: ?Sized, F>(orig: Self, f: F) -> Result<MappedShmMutexGuard<'a, U, R>, Self>
    where
        F: FnOnce(&mut T) -> Option<&mut U>,
    {
        // SAFETY: as in `map`.
        match f(unsafe { &mut *orig.mutex.data.get() }) {
            Some(part) => {
                let data = NonNull::from(part);
                // SAFETY: as in `map`.
                Ok(unsafe { orig.into_mapped(data) })
            }
            None => Err(orig),
        }
    }

    /// Hands this guard's hold of the lock to a mapped guard that gives access to `data`.
    ///
    /// # Safety
    ///
    /// - `data` is valid for reads and writes for `'a`, and only the returned guard uses it.
    unsafe fn into_mapped<U: ?Sized>(self, data: NonNull<U>) -> MappedShmMutexGuard<'a, U, R> {
        let this = ManuallyDrop::new(self);
        let mutex: &'a ShmMutex<T, R> = this.mutex;
        MappedShmMutexGuard {
            data,
            raw: &mutex.raw,
            poison: &mutex.poison,
            panicking: this.panicking,
            // SAFETY: `this` is never dropped, so the access moves to the new guard.
            access: unsafe { core::ptr::read(&this.access) },
            _marker: PhantomData,
        }
    }
}

impl<'a, U: ?Sized, R: RawMutex> MappedShmMutexGuard<'a, U, R> {
    /// Narrows the guard further, to the part of `U` that `f` picks; as
    /// [`ShmMutexGuard::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{MappedShmMutexGuard, ShmMutex, ShmMutexGuard};
    /// let m = ShmMutex::new(([0u8; 2], 0u8));
    /// let pair = ShmMutexGuard::map(m.lock().unwrap(), |v| &mut v.0);
    /// let mut second = MappedShmMutexGuard::map(pair, |p| &mut p[1]);
    /// *second = 4;
    /// drop(second);
    /// assert_eq!(m.lock().unwrap().0, [0, 4]);
    /// ```
    pub fn map<V: ?Sized, F>(orig: Self, f: F) -> MappedShmMutexGuard<'a, V, R>
    where
        F: FnOnce(&mut U) -> &mut V,
    {
        // SAFETY: `orig` holds the lock and is the only user of `data`, which is valid.
        let part = f(unsafe { &mut *orig.data.as_ptr() });
        let data = NonNull::from(part);
        // SAFETY: `part` is borrowed from `U` (or is `'static`) and nobody else uses it.
        unsafe { orig.with_data(data) }
    }

    /// Narrows the guard further, or gives it back when `f` returns `None`; as
    /// [`ShmMutexGuard::try_map`].
    ///
    /// # Errors
    ///
    /// `Err(orig)`, the guard as it was, when `f` returns `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{MappedShmMutexGuard, ShmMutex, ShmMutexGuard};
    /// let m = ShmMutex::new([1u8, 2, 3]);
    /// let all = ShmMutexGuard::map(m.lock().unwrap(), |a| &mut a[..]);
    /// let all = MappedShmMutexGuard::try_map(all, |s| s.get_mut(3)).unwrap_err();
    /// assert_eq!(all.len(), 3);
    /// ```
    pub fn try_map<V: ?Sized, F>(orig: Self, f: F) -> Result<MappedShmMutexGuard<'a, V, R>, Self>
    where
        F: FnOnce(&mut U) -> Option<&mut V>,
    {
        // SAFETY: as in `map`.
        match f(unsafe { &mut *orig.data.as_ptr() }) {
            Some(part) => {
                let data = NonNull::from(part);
                // SAFETY: as in `map`.
                Ok(unsafe { orig.with_data(data) })
            }
            None => Err(orig),
        }
    }

    /// Hands this guard's hold of the lock to a guard that gives access to `data`.
    ///
    /// # Safety
    ///
    /// - `data` is valid for reads and writes for `'a`, and only the returned guard uses it.
    unsafe fn with_data<V: ?Sized>(self, data: NonNull<V>) -> MappedShmMutexGuard<'a, V, R> {
        let this = ManuallyDrop::new(self);
        MappedShmMutexGuard {
            data,
            raw: this.raw,
            poison: this.poison,
            panicking: this.panicking,
            // SAFETY: `this` is never dropped, so the access moves to the new guard.
            access: unsafe { core::ptr::read(&this.access) },
            _marker: PhantomData,
        }
    }
}

impl<U: ?Sized, R: RawMutex> Deref for MappedShmMutexGuard<'_, U, R> {
    type Target = U;
    fn deref(&self) -> &U {
        // SAFETY: the guard holds the lock and is the only user of `data`.
        unsafe { self.data.as_ref() }
    }
}

impl<U: ?Sized, R: RawMutex> DerefMut for MappedShmMutexGuard<'_, U, R> {
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: the guard holds the lock and is the only user of `data`.
        unsafe { self.data.as_mut() }
    }
}

impl<U: ?Sized, R: RawMutex> Drop for MappedShmMutexGuard<'_, U, R> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock, taken over from the guard it was mapped from.
        unsafe { release(self.raw, self.poison, self.panicking, &mut self.access) };
    }
}

impl<U: ?Sized + fmt::Debug, R: RawMutex> fmt::Debug for MappedShmMutexGuard<'_, U, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<U: ?Sized + fmt::Display, R: RawMutex> fmt::Display for MappedShmMutexGuard<'_, U, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
