//! `ShmMutex<T>` and its guard, written once over a backend's [`RawMutex`].

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::backend::{Acquired, RawMutex};
use crate::shm_safe::fingerprint;
use crate::sync::{Access, AtomicU32, DataCell, Deadline, Ordering};
use crate::{BitPatterns, ShmSafe};

mod mapped;

pub use mapped::MappedShmMutexGuard;

/// A mutual-exclusion lock that works across processes sharing memory, generic over its
/// backend; use the aliases [`futex::ShmMutex`](crate::futex::ShmMutex),
/// [`pthread::ShmMutex`](crate::pthread::ShmMutex) or the default
/// [`ShmMutex`](crate::ShmMutex).
///
/// The API is `std::sync::Mutex`'s. Poisoning is shared state in the mapping: a panic while
/// a guard is held poisons the mutex, and so does the death of the process holding it. The
/// next `lock` in any process then returns `Err(PoisonError)` carrying a usable guard, until
/// [`clear_poison`](Self::clear_poison).
///
/// # Examples
///
/// ```
/// use shmsync::{ShmBox, ShmMutex};
///
/// let shared = ShmBox::new(ShmMutex::new(0u64)).unwrap();
/// *shared.lock().unwrap() += 1;
/// assert_eq!(*shared.lock().unwrap(), 1);
/// ```
#[repr(C)]
pub struct ShmMutex<T, R> {
    raw: R,
    /// 1 when poisoned, 0 otherwise; read and written under the lock or by `clear_poison`.
    poison: AtomicU32,
    data: DataCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one holder at a time; `T: Send` lets that holder be
// any thread, as for `std::sync::Mutex`.
unsafe impl<T: Send, R: RawMutex> Sync for ShmMutex<T, R> {}
// SAFETY: the mutex holds no process-local handle; moving it moves a `T: Send`.
unsafe impl<T: Send, R: RawMutex> Send for ShmMutex<T, R> {}

// A panic while the lock is held poisons it, as with `std::sync::Mutex`, which has these too.
impl<T, R: RawMutex> std::panic::UnwindSafe for ShmMutex<T, R> {}
impl<T, R: RawMutex> std::panic::RefUnwindSafe for ShmMutex<T, R> {}

// SAFETY: a repr(C) composite of a raw lock (which holds no pointer or handle, per
// `RawMutex`'s contract), an atomic flag and a ShmSafe value; no drop glue.
unsafe impl<T: ShmSafe, R: RawMutex> ShmSafe for ShmMutex<T, R> {
    const FINGERPRINT: u64 = fingerprint::finish(
        fingerprint::mix(
            fingerprint::mix(fingerprint::start(fingerprint::MUTEX), R::ID as u64),
            T::FINGERPRINT,
        ),
        core::mem::size_of::<Self>(),
        core::mem::align_of::<Self>(),
    );
    const BACKENDS: u32 = T::BACKENDS | R::ID.bit();
    // The poison word is 0 or not; the lock's own bytes are its backend's business.
    const BIT_PATTERNS: BitPatterns = R::ID.bit_patterns().and(T::BIT_PATTERNS);

    unsafe fn is_valid_bit_pattern(ptr: *const Self) -> bool {
        if Self::BIT_PATTERNS == BitPatterns::Unchecked {
            return false;
        }
        // SAFETY: `ptr` points to a readable mutex (caller's contract); `addr_of!` makes no
        // reference to its unchecked bytes.
        let data = unsafe { core::ptr::addr_of!((*ptr).data) };
        // SAFETY: `data` points into the same readable mutex.
        let value = unsafe { DataCell::value_ptr(data) };
        // SAFETY: the value lies within the mutex, aligned for T (caller's contract).
        unsafe { T::is_valid_bit_pattern(value) }
    }
}

impl<T: ShmSafe, R: RawMutex> ShmMutex<T, R> {
    crate::sync::constructor! {
        /// Creates an unlocked mutex holding `value`; it needs no further init step wherever
        /// it is placed.
        ///
        /// A `const fn`, except under `--cfg shmsync_loom`, where it makes the loom objects
        /// behind the mutex so that their creation happens before any other model thread uses
        /// them (a `static` mutex would outlive the model's executions anyway).
        ///
        /// # Examples
        ///
        /// ```
        /// let m = shmsync::ShmMutex::new([0u8; 16]);
        /// assert_eq!(m.lock().unwrap()[3], 0);
        /// ```
        pub fn new(value: T) -> Self {
            crate::shm_safe::assert_no_drop!(T);
            ShmMutex {
                raw: R::INIT,
                poison: AtomicU32::new(0),
                data: DataCell::new(value),
            }
        }
    }
}

impl<T, R: RawMutex> crate::sync::MakeModel for ShmMutex<T, R> {
    fn make_model(&self) {
        self.raw.make_model();
        self.poison.make_model();
        self.data.make_model();
    }
}

impl<T, R: RawMutex> ShmMutex<T, R> {
    /// Blocks until the lock is held.
    ///
    /// # Errors
    ///
    /// `Err(PoisonError)` carrying the guard when the mutex is poisoned: a holder panicked,
    /// or its process died while holding the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmsync::ShmMutex::new(1u32);
    /// *m.lock().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    pub fn lock(&self) -> LockResult<ShmMutexGuard<'_, T, R>> {
        let acquired = self.raw.lock();
        // SAFETY: `lock` returns only once this thread holds the lock.
        unsafe { self.guard(acquired) }
    }

    /// Takes the lock if no one holds it now.
    ///
    /// # Errors
    ///
    /// `TryLockError::WouldBlock` when another thread or process holds the lock;
    /// `TryLockError::Poisoned` as for [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::TryLockError;
    /// let m = shmsync::ShmMutex::new(0u8);
    /// let held = m.lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(held);
    /// assert!(m.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> TryLockResult<ShmMutexGuard<'_, T, R>> {
        match self.raw.try_lock() {
            // SAFETY: `Some` means this thread holds the lock.
            Some(acquired) => Ok(unsafe { self.guard(acquired) }?),
            None => Err(TryLockError::WouldBlock),
        }
    }

    /// Blocks until the lock is held or `timeout` passes, measured on CLOCK_MONOTONIC.
    ///
    /// # Errors
    ///
    /// `TryLockError::WouldBlock` when the timeout passes; `TryLockError::Poisoned` as for
    /// [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::TryLockError;
    /// use std::time::Duration;
    /// let m = shmsync::ShmMutex::new(0u8);
    /// let _held = m.lock().unwrap();
    /// let attempt = m.try_lock_for(Duration::from_millis(5));
    /// assert!(matches!(attempt, Err(TryLockError::WouldBlock)));
    /// ```
    pub fn try_lock_for(&self, timeout: Duration) -> TryLockResult<ShmMutexGuard<'_, T, R>> {
        let acquired = match Deadline::after(timeout) {
            Some(deadline) => self.raw.try_lock_until(deadline),
            None => Some(self.raw.lock()),
        };
        match acquired {
            // SAFETY: `Some` means this thread holds the lock.
            Some(acquired) => Ok(unsafe { self.guard(acquired) }?),
            None => Err(TryLockError::WouldBlock),
        }
    }

    /// Blocks until the lock is held or `deadline` passes.
    ///
    /// An `Instant` cannot be read as a CLOCK_MONOTONIC time (the clock it reads on Linux),
    /// so the time left until `deadline` is taken from `Instant::now()` and added to a
    /// CLOCK_MONOTONIC reading made just after; the wait then runs on that clock. The two
    /// readings lie nanoseconds apart. A deadline already passed still takes a free lock; one
    /// too far away for a `timespec` means no limit.
    ///
    /// # Errors
    ///
    /// `TryLockError::WouldBlock` when the deadline passes; `TryLockError::Poisoned` as for
    /// [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::TryLockError;
    /// use std::time::{Duration, Instant};
    /// let m = shmsync::ShmMutex::new(0u8);
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// let held = m.lock().unwrap();
    /// assert!(matches!(m.try_lock_until(deadline), Err(TryLockError::WouldBlock)));
    /// drop(held);
    /// assert!(m.try_lock_until(deadline).is_ok());
    /// ```
    pub fn try_lock_until(&self, deadline: Instant) -> TryLockResult<ShmMutexGuard<'_, T, R>> {
        self.try_lock_for(deadline.saturating_duration_since(Instant::now()))
    }

    /// Who holds the mutex now, for logs and diagnostics: `None` when it is free (or, on the
    /// pthread backend outside glibc, when it cannot be told). Never blocks and changes
    /// nothing; the answer may be stale as soon as it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = shmsync::ShmMutex::new(0u8);
    /// let _held = m.lock().unwrap();
    /// // Elsewhere, a lock attempt that timed out can say who was in the way:
    /// if m.try_lock_for(Duration::from_millis(1)).is_err() {
    ///     let owner = m.owner().expect("someone holds it");
    ///     assert_eq!(owner.pid(), Some(std::process::id()));
    ///     assert!(!owner.is_dead());
    /// }
    /// ```
    pub fn owner(&self) -> Option<crate::LockOwner> {
        self.raw.owner()
    }

    /// Whether the mutex is poisoned. A holder's death is reported once a lock attempt has
    /// observed it.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmsync::ShmMutex::new(0u8);
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed) != 0
    }

    /// Clears the poison flag, in every process.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmsync::ShmMutex::new(0u8);
    /// let _ = std::panic::catch_unwind(|| {
    ///     let _guard = m.lock().unwrap();
    ///     panic!("poison it");
    /// });
    /// assert!(m.is_poisoned());
    /// m.clear_poison();
    /// assert!(m.lock().is_ok());
    /// ```
    pub fn clear_poison(&self) {
        self.poison.store(0, Ordering::Relaxed);
    }

    /// A mutable reference to the value; no locking is needed since `&mut self` is unique in
    /// this process (another process may still map the same bytes, so use it only for memory
    /// nobody else maps).
    ///
    /// # Errors
    ///
    /// `Err(PoisonError)` carrying the reference when the mutex is poisoned.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = shmsync::ShmMutex::new(1u8);
    /// *m.get_mut().unwrap() = 2;
    /// assert_eq!(m.into_inner().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.is_poisoned();
        poison_result(poisoned, self.data.get_mut())
    }

    /// Consumes the mutex and returns the value.
    ///
    /// # Errors
    ///
    /// `Err(PoisonError)` carrying the value when the mutex is poisoned.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmsync::ShmMutex::new(7u8);
    /// assert_eq!(m.into_inner().unwrap(), 7);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.is_poisoned();
        poison_result(poisoned, self.data.into_inner())
    }

    /// Wraps a freshly acquired lock in a guard, recording an owner's death as poison.
    ///
    /// # Safety
    ///
    /// - The calling thread holds the lock, acquired as `acquired` says, and no guard owns
    ///   that acquisition yet: the returned guard unlocks it when dropped.
    pub(crate) unsafe fn guard(&self, acquired: Acquired) -> LockResult<ShmMutexGuard<'_, T, R>> {
        if acquired == Acquired::OwnerDied {
            self.poison.store(1, Ordering::Relaxed);
        }
        let guard = ShmMutexGuard {
            mutex: self,
            panicking: std::thread::panicking(),
            access: self.data.access(),
            _not_send: PhantomData,
        };
        poison_result(self.is_poisoned(), guard)
    }

    /// The raw lock, for the condition variable.
    pub(crate) fn raw_lock(&self) -> &R {
        &self.raw
    }
}

/// `value` as std reports it: `Err(PoisonError)` carrying it when `poisoned`.
fn poison_result<V>(poisoned: bool, value: V) -> LockResult<V> {
    if poisoned {
        Err(PoisonError::new(value))
    } else {
        Ok(value)
    }
}

impl<T: ShmSafe + Default, R: RawMutex> Default for ShmMutex<T, R> {
    fn default() -> Self {
        ShmMutex::new(T::default())
    }
}

/// An unlocked mutex holding `value`, as [`ShmMutex::new`] makes it.
///
/// # Examples
///
/// ```
/// let m: shmsync::ShmMutex<u32> = 7.into();
/// assert_eq!(*m.lock().unwrap(), 7);
/// ```
impl<T: ShmSafe, R: RawMutex> From<T> for ShmMutex<T, R> {
    fn from(value: T) -> Self {
        ShmMutex::new(value)
    }
}

impl<T: fmt::Debug, R: RawMutex> fmt::Debug for ShmMutex<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ShmMutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .field("backend", &R::ID)
            .finish_non_exhaustive()
    }
}

/// Proof that a [`ShmMutex`] is held; unlocks it on drop. Generic over the backend; use the
/// aliases such as [`futex::ShmMutexGuard`](crate::futex::ShmMutexGuard).
///
/// Like `std::sync::MutexGuard`, it is not `Send`: the thread that locked must unlock.
///
/// # Examples
///
/// ```
/// let m = shmsync::ShmMutex::new(String::new().len() as u64);
/// let mut guard = m.lock().unwrap();
/// *guard += 5;
/// drop(guard);
/// assert_eq!(*m.lock().unwrap(), 5);
/// ```
#[must_use = "if unused the ShmMutex will immediately unlock"]
pub struct ShmMutexGuard<'a, T, R: RawMutex> {
    mutex: &'a ShmMutex<T, R>,
    /// Whether this thread was already panicking when it locked.
    panicking: bool,
    /// This guard's access to the value (reported to loom under `--cfg shmsync_loom`).
    access: Access,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only, which is fine when `T: Sync`.
unsafe impl<T: Sync, R: RawMutex> Sync for ShmMutexGuard<'_, T, R> {}

impl<'a, T, R: RawMutex> ShmMutexGuard<'a, T, R> {
    /// Ends the guard without unlocking: the lock stays held by this thread, which now
    /// answers for it (a condition-variable wait unlocks and re-locks it; a simulated death
    /// never does).
    pub(crate) fn leak(self) -> &'a ShmMutex<T, R> {
        let mut this = ManuallyDrop::new(self);
        this.access.end();
        this.mutex
    }
}

impl<T, R: RawMutex> Deref for ShmMutexGuard<'_, T, R> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this thread holds the lock, so no one writes the value.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T, R: RawMutex> DerefMut for ShmMutexGuard<'_, T, R> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this thread holds the lock exclusively.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T, R: RawMutex> Drop for ShmMutexGuard<'_, T, R> {
    #[inline]
    fn drop(&mut self) {
        let mutex = self.mutex;
        // SAFETY: the guard proves this thread holds the lock, and owns that hold.
        unsafe { release(&mutex.raw, &mutex.poison, self.panicking, &mut self.access) };
    }
}

/// Gives a guard's lock back: poisons it if this thread began panicking since it locked
/// (`was_panicking` says whether it already was then), ends the access, and unlocks.
///
/// # Safety
///
/// - The calling thread holds `raw`, and the guard releasing it owns that hold.
#[inline]
unsafe fn release<R: RawMutex>(
    raw: &R,
    poison: &AtomicU32,
    was_panicking: bool,
    access: &mut Access,
) {
    if !was_panicking && std::thread::panicking() {
        poison.store(1, Ordering::Relaxed);
    }
    // The access ends before the next holder's can begin.
    access.end();
    // SAFETY: the calling thread holds the lock (caller's contract).
    unsafe { raw.unlock() };
}

impl<T: fmt::Debug, R: RawMutex> fmt::Debug for ShmMutexGuard<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display, R: RawMutex> fmt::Display for ShmMutexGuard<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
