//! A mutex's value under loom: kept in place, with each guard's access reported to a loom
//! cell that tracks causality.

use super::Lazy;

/// Holds a mutex's value; every guard's whole lifetime is one mutable access to `tracker`.
pub(crate) struct DataCell<T> {
    value: core::cell::UnsafeCell<T>,
    /// Made on first access, by a thread that holds the lock.
    tracker: Lazy<loom::cell::UnsafeCell<()>>,
}

impl<T> DataCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        DataCell {
            value: core::cell::UnsafeCell::new(value),
            tracker: Lazy::new(),
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> *mut T {
        self.value.get()
    }

    /// The value inside the cell at `this`, without making a reference to its bytes.
    ///
    /// # Safety
    ///
    /// - `this` points to a `DataCell<T>` (whose bytes need not be a valid `T` yet).
    pub(crate) unsafe fn value_ptr(this: *const Self) -> *const T {
        // SAFETY: `this` points to a DataCell (caller's contract); `addr_of!` makes no
        // reference to the field.
        let value = unsafe { core::ptr::addr_of!((*this).value) };
        core::cell::UnsafeCell::raw_get(value)
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    pub(crate) fn into_inner(self) -> T {
        self.value.into_inner()
    }

    /// The loom cell that tracks accesses, made on first use.
    fn tracker(&self) -> &loom::cell::UnsafeCell<()> {
        self.tracker.get_or_init(|| loom::cell::UnsafeCell::new(()))
    }

    /// Starts a guard's access: loom checks that every earlier guard's access happened
    /// before this one, and panics with a causality violation otherwise.
    pub(crate) fn access(&self) -> Access {
        Access(Some(self.tracker().get_mut()))
    }
}

/// A guard's access to the value, reported to loom until it ends.
pub(crate) struct Access(Option<loom::cell::MutPtr<()>>);

impl Access {
    /// Ends the access before the guard is leaked (by a condvar wait, or a simulated death).
    pub(crate) fn end(&mut self) {
        self.0 = None;
    }
}

impl<T> crate::sync::MakeModel for DataCell<T> {
    /// Makes the loom cell that tracks accesses now.
    fn make_model(&self) {
        self.tracker();
    }
}
