//! The cell that holds a mutex's value, and the proof of access a guard carries.
//!
//! Natively these are a plain `UnsafeCell` and a zero-sized token; under loom the same names
//! report every guard's access to loom, so that a lock that fails to order two holders is
//! a causality violation in the model.

/// Holds a mutex's value; `repr(transparent)`, so the shared layout is the value's own.
#[repr(transparent)]
pub(crate) struct DataCell<T>(core::cell::UnsafeCell<T>);

impl<T> DataCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        DataCell(core::cell::UnsafeCell::new(value))
    }

    /// A pointer to the value; dereferencing it is up to the caller's lock.
    #[inline]
    pub(crate) fn get(&self) -> *mut T {
        self.0.get()
    }

    /// The value inside the cell at `this`, without making a reference to its bytes.
    ///
    /// # Safety
    ///
    /// - `this` points to a `DataCell<T>` (whose bytes need not be a valid `T` yet).
    pub(crate) unsafe fn value_ptr(this: *const Self) -> *const T {
        // `repr(transparent)` over an `UnsafeCell<T>`, which has its value's layout.
        this.cast::<T>()
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }

    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }

    /// Records that a guard starts to access the value (nothing to record natively).
    #[inline]
    pub(crate) fn access(&self) -> Access {
        Access
    }
}

/// A guard's access to the value; zero-sized natively.
pub(crate) struct Access;

impl Access {
    /// Ends the access before the guard is leaked (by a condvar wait, or a simulated death).
    #[inline]
    pub(crate) fn end(&mut self) {}
}

impl<T> crate::sync::MakeModel for DataCell<T> {}
