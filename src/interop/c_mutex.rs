//! `CMutex<T>`: a C program's `pthread_mutex_t` and the data it guards, in C's own layout.
//!
//! The type adds nothing to the C layout — no init word, no poison word — so the lock's
//! whole state is glibc's: poisoning is glibc's robust-mutex protocol (`EOWNERDEAD`, then
//! `pthread_mutex_consistent` or `ENOTRECOVERABLE`), which C peers speak too.

use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use std::io;
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::backend::pthread::ffi;
use crate::sys::error::invalid_input;
use crate::sys::time::Deadline;
use crate::{BitPatterns, ShmSafe};

/// A C program's process-shared `pthread_mutex_t` followed by the data it guards:
/// `#[repr(C)] { pthread_mutex_t, T }`, byte for byte the C struct
/// `struct { pthread_mutex_t lock; /* T's fields */ }`.
///
/// A Rust process joins a C program's mutex with [`from_ptr`](Self::from_ptr) or a
/// [`ForeignSegment`](crate::interop::ForeignSegment), or initialises one in place with
/// [`init`](Self::init) for C programs to use; there is no by-value constructor, since a
/// `pthread_mutex_t` must be initialised where it lives. The lock is the C library's, so C
/// and Rust processes exclude each other.
///
/// **Owner death.** On a robust mutex (`PTHREAD_MUTEX_ROBUST`), the next locker after a
/// holder's death — in C or Rust — gets `EOWNERDEAD`; here that is `Ok(Err(PoisonError))`
/// carrying a guard. Repair the data, then call [`CMutexGuard::mark_consistent`]. A guard
/// dropped without it leaves the mutex unusable for everyone (`ENOTRECOVERABLE`, an
/// `io::Error` from every later lock), as in C. On a mutex that is not robust a dead holder
/// keeps it locked for good: [`try_lock_for`](Self::try_lock_for) then times out
/// (`WouldBlock`), and [`lock`](Self::lock) waits forever.
///
/// **Differences from [`ShmMutex`](crate::ShmMutex).** The C layout has no room for a poison
/// flag: a panic while a guard is held does not poison (add a flag to `T` if you need it), and
/// a death is reported only to the locker that meets it. Lock calls return an `io::Result`
/// around std's result types, for the errors a C peer can cause (`ENOTRECOVERABLE`,
/// `EDEADLK` from an error-checking mutex, `EINVAL`).
///
/// # Layout
///
/// `T` starts right after the `pthread_mutex_t` (40 bytes on x86-64 glibc, 48 on aarch64,
/// aligned to 8): for a `T` aligned to at most 8, the offsets of `T`'s fields are those of the
/// C struct's members after `lock`.
///
/// # Examples
///
/// ```
/// use shmsync::interop::{CMutex, CMutexOptions};
/// use shmsync::ShmSafe;
///
/// // struct shared { pthread_mutex_t lock; int counter; char text[64]; };
/// #[derive(ShmSafe)]
/// #[repr(C)]
/// struct Shared {
///     counter: i32,
///     text: [u8; 64],
/// }
///
/// let mut place = std::mem::MaybeUninit::<CMutex<Shared>>::uninit();
/// let value = Shared { counter: 0, text: [0; 64] };
/// // SAFETY: `place` is ours alone and outlives `m`; the mutex is not robust, so no robust
/// // list can point into the stack.
/// let m = unsafe { CMutex::init(place.as_mut_ptr(), value, CMutexOptions::new().robust(false)) };
/// let m = m.unwrap();
/// m.lock().unwrap().unwrap().counter += 1;
/// assert_eq!(m.lock().unwrap().unwrap().counter, 1);
/// ```
#[repr(C)]
pub struct CMutex<T> {
    /// The C mutex, initialised where it lies by C or by [`CMutex::init`].
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    /// The guarded data, read and written only by the mutex's holder.
    data: UnsafeCell<T>,
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
const _: () = assert!(
    core::mem::size_of::<CMutex<()>>() == 40
        && core::mem::align_of::<CMutex<()>>() == 8
        && core::mem::size_of::<CMutex<[u8; 68]>>() == 112
);

// SAFETY: the C mutex is process-shared and usable from any thread; the holder gets `&mut T`,
// so `T: Send` lets that be any thread, as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for CMutex<T> {}
// SAFETY: as above; the struct holds no process-local handle.
unsafe impl<T: Send> Send for CMutex<T> {}

/// How [`CMutex::init`] sets a mutex up; it is always `PTHREAD_PROCESS_SHARED` and of the
/// normal type.
///
/// # Examples
///
/// ```
/// use shmsync::interop::CMutexOptions;
/// let rt = CMutexOptions::new().prio_inherit(true);
/// assert!(rt.is_robust() && rt.is_prio_inherit());
/// assert!(!CMutexOptions::new().robust(false).is_robust());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CMutexOptions {
    attrs: ffi::MutexAttrs,
}

impl Default for CMutexOptions {
    fn default() -> Self {
        CMutexOptions::new()
    }
}

impl CMutexOptions {
    /// Robust (`PTHREAD_MUTEX_ROBUST`), without priority inheritance.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmsync::interop::CMutexOptions::new().is_robust());
    /// ```
    pub const fn new() -> Self {
        CMutexOptions {
            attrs: ffi::MutexAttrs {
                robust: true,
                prio_inherit: false,
            },
        }
    }

    /// Whether a holder's death is reported to the next locker (`PTHREAD_MUTEX_ROBUST`) or
    /// leaves the mutex locked for good (`PTHREAD_MUTEX_STALLED`).
    ///
    /// # Examples
    ///
    /// ```
    /// let stalled = shmsync::interop::CMutexOptions::new().robust(false);
    /// assert!(!stalled.is_robust());
    /// ```
    pub const fn robust(mut self, robust: bool) -> Self {
        self.attrs.robust = robust;
        self
    }

    /// Whether the holder inherits the priority of its highest-priority waiter
    /// (`PTHREAD_PRIO_INHERIT`, for real-time threads; the kernel then arbitrates the lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let pi = shmsync::interop::CMutexOptions::new().prio_inherit(true);
    /// assert!(pi.is_prio_inherit());
    /// ```
    pub const fn prio_inherit(mut self, prio_inherit: bool) -> Self {
        self.attrs.prio_inherit = prio_inherit;
        self
    }

    /// Whether mutexes are set up robust.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmsync::interop::CMutexOptions::default().is_robust());
    /// ```
    pub const fn is_robust(&self) -> bool {
        self.attrs.robust
    }

    /// Whether mutexes are set up with priority inheritance.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmsync::interop::CMutexOptions::default().is_prio_inherit());
    /// ```
    pub const fn is_prio_inherit(&self) -> bool {
        self.attrs.prio_inherit
    }
}

impl<T: ShmSafe> CMutex<T> {
    /// Writes `value` and initialises the mutex at `place` with `opts`
    /// (`pthread_mutex_init`, `PTHREAD_PROCESS_SHARED`), for C or Rust processes to share.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a null or misaligned `place`; `Unsupported` for a robust mutex where
    /// the platform has none (macOS); the OS error of a pthread call that refuses the set-up
    /// (for example priority inheritance where it is not supported).
    ///
    /// # Safety
    ///
    /// - `place` is valid for reads and writes of `size_of::<CMutex<T>>()` bytes, and stays
    ///   mapped, for `'a`.
    /// - No thread of any process uses the mutex (holds it, waits for it, locks it) while this
    ///   runs: re-initialising a mutex in use is undefined behaviour in C.
    /// - Later, every process follows [`from_ptr`](Self::from_ptr)'s rules for the data.
    /// - When `opts` is robust: the memory stays mapped, and is not reused, for as long as a
    ///   thread's robust list may point into it — until every guard this process takes is
    ///   dropped, and for the rest of the process if one is leaked with `mem::forget`. Memory
    ///   of a [`ForeignSegment`](crate::interop::ForeignSegment) meets this by itself: the
    ///   segment keeps its mapping when it drops while a list still points into it.
    ///
    /// # Examples
    ///
    /// See [`CMutex`].
    pub unsafe fn init<'a>(
        place: *mut CMutex<T>,
        value: T,
        opts: CMutexOptions,
    ) -> io::Result<&'a CMutex<T>> {
        crate::shm_safe::assert_no_drop!(T);
        check_place(place)?;
        if opts.attrs.robust && !ffi::HAS_ROBUST {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "CMutex::init: this platform has no robust mutexes",
            ));
        }
        // SAFETY: `place` is valid, aligned and unused by others (caller's contract);
        // `addr_of_mut!` makes no reference to the uninitialised bytes.
        let data = unsafe { core::ptr::addr_of_mut!((*place).data) };
        // SAFETY: as above; `UnsafeCell<T>` has `T`'s layout.
        unsafe { data.cast::<T>().write(value) };
        // SAFETY: as above.
        let mutex = unsafe { core::ptr::addr_of_mut!((*place).mutex) }.cast();
        // SAFETY: the mutex's bytes are ours alone (caller's contract); the caller keeps a
        // robust mutex's memory mapped as the robust lists need.
        unsafe { ffi::try_mutex_init(mutex, opts.attrs) }.map_err(os_error)?;
        // SAFETY: both fields are initialised and `place` stays valid for 'a.
        Ok(unsafe { &*place })
    }

    /// Joins the mutex at `ptr`, which a C program (or [`init`](Self::init)) initialised.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a null or misaligned `ptr`.
    ///
    /// # Safety
    ///
    /// - `ptr` is valid for reads and writes of `size_of::<CMutex<T>>()` bytes, and stays
    ///   mapped, for `'a`.
    /// - The `pthread_mutex_t` was initialised with `PTHREAD_PROCESS_SHARED` (when other
    ///   processes use it) and is not destroyed or re-initialised during `'a`; it is not of
    ///   the `PTHREAD_MUTEX_RECURSIVE` type, whose relock by its holder would hand out a
    ///   second guard to the same data.
    /// - Every process reads and writes the data only while it holds the mutex, and writes
    ///   only valid `T` values (for a `T` whose bytes can be checked — see
    ///   [`ShmSafe::BIT_PATTERNS`] — each lock checks them and refuses invalid ones).
    /// - When the mutex is robust: the memory stays mapped as [`init`](Self::init) says (a
    ///   [`ForeignSegment`](crate::interop::ForeignSegment) does this by itself).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::interop::{CMutex, CMutexOptions};
    /// let mut place = std::mem::MaybeUninit::<CMutex<u32>>::uninit();
    /// let opts = CMutexOptions::new().robust(false);
    /// // SAFETY: `place` is ours and outlives both references; not robust, on the stack.
    /// unsafe { CMutex::init(place.as_mut_ptr(), 5, opts) }.unwrap();
    /// // As a C program's mutex would be joined: by address.
    /// // SAFETY: initialised just above, process-shared, of the normal type.
    /// let m = unsafe { CMutex::<u32>::from_ptr(place.as_mut_ptr()) }.unwrap();
    /// assert_eq!(*m.lock().unwrap().unwrap(), 5);
    /// ```
    pub unsafe fn from_ptr<'a>(ptr: *mut CMutex<T>) -> io::Result<&'a CMutex<T>> {
        check_place(ptr)?;
        // SAFETY: valid, aligned and initialised for 'a (caller's contract).
        Ok(unsafe { &*ptr })
    }
}

/// Refuses a null or misaligned place for a `CMutex`.
fn check_place<T>(place: *mut CMutex<T>) -> io::Result<()> {
    let align = core::mem::align_of::<CMutex<T>>();
    if place.is_null() || (place as usize) % align != 0 {
        return Err(invalid_input(format!(
            "CMutex at {place:p}: needs a non-null address aligned to {align} bytes"
        )));
    }
    Ok(())
}

/// The `io::Error` of a failed pthread call.
fn os_error((op, rc): ffi::Failed) -> io::Error {
    crate::sys::error::with_context(io::Error::from_raw_os_error(rc), op)
}

impl<T: ShmSafe> CMutex<T> {
    /// Blocks until the lock is held (`pthread_mutex_lock`).
    ///
    /// # Errors
    ///
    /// `Ok(Err(PoisonError))` carrying the guard when the previous holder died holding the
    /// lock (`EOWNERDEAD`; see [`CMutexGuard::mark_consistent`]). `Err` for what a C peer can
    /// cause, with the pthread call's code as `raw_os_error()`: `ENOTRECOVERABLE` (a holder
    /// died and the next one released the lock without marking it consistent: re-initialise it
    /// once no process uses it), `EDEADLK` (an error-checking mutex this thread holds), `InvalidData` when the data's bytes are not a
    /// valid `T` (the lock is released again; unrecoverable then if its holder had died), or
    /// another OS error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::interop::{CMutex, CMutexOptions};
    /// # let mut place = std::mem::MaybeUninit::<CMutex<u64>>::uninit();
    /// # let opts = CMutexOptions::new().robust(false);
    /// // SAFETY: `place` is ours and outlives `m`; not robust, on the stack.
    /// let m = unsafe { CMutex::init(place.as_mut_ptr(), 0u64, opts) }.unwrap();
    /// let mut guard = m.lock()?.unwrap();
    /// *guard += 1;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> io::Result<LockResult<CMutexGuard<'_, T>>> {
        // SAFETY: the mutex is initialised (constructors' contracts).
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex.get()) };
        match self.acquired(rc, 0)? {
            Some(locked) => Ok(locked),
            None => unreachable!("pthread_mutex_lock returned without the lock"),
        }
    }

    /// Takes the lock if no one holds it now (a timed lock whose deadline is now: see the
    /// source for why not `pthread_mutex_trylock`).
    ///
    /// # Errors
    ///
    /// `Ok(Err(TryLockError::WouldBlock))` when it is held; otherwise as for
    /// [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::interop::{CMutex, CMutexOptions};
    /// use std::sync::TryLockError;
    /// # let mut place = std::mem::MaybeUninit::<CMutex<u8>>::uninit();
    /// # let opts = CMutexOptions::new().robust(false);
    /// // SAFETY: `place` is ours and outlives `m`; not robust, on the stack.
    /// let m = unsafe { CMutex::init(place.as_mut_ptr(), 0u8, opts) }.unwrap();
    /// let held = m.lock()?.unwrap();
    /// assert!(matches!(m.try_lock()?, Err(TryLockError::WouldBlock)));
    /// drop(held);
    /// assert!(m.try_lock()?.is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock(&self) -> io::Result<TryLockResult<CMutexGuard<'_, T>>> {
        // Not `pthread_mutex_trylock`: on a robust mutex that is not recoverable, glibc's
        // (2.36) returns ENOTRECOVERABLE but leaves the lock word naming this thread, so
        // every other locker then sees it held instead of unrecoverable. A timed lock whose
        // deadline has passed takes a free mutex (POSIX requires it) and leaves that state
        // alone.
        // SAFETY: the mutex is initialised (constructors' contracts).
        let rc = unsafe { ffi::mutex_lock_until(self.mutex.get(), Deadline::now()) };
        Ok(would_block(self.acquired(rc, libc::ETIMEDOUT)?))
    }

    /// Blocks until the lock is held or `timeout` passes, measured on CLOCK_MONOTONIC
    /// (`pthread_mutex_clocklock` on glibc). The way to wait on a mutex that is not robust:
    /// a holder that died leaves it locked, and this then times out.
    ///
    /// # Errors
    ///
    /// `Ok(Err(TryLockError::WouldBlock))` when the timeout passes; otherwise as for
    /// [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::interop::{CMutex, CMutexOptions};
    /// use std::sync::TryLockError;
    /// use std::time::Duration;
    /// # let mut place = std::mem::MaybeUninit::<CMutex<u8>>::uninit();
    /// # let opts = CMutexOptions::new().robust(false);
    /// // SAFETY: `place` is ours and outlives `m`; not robust, on the stack.
    /// let m = unsafe { CMutex::init(place.as_mut_ptr(), 0u8, opts) }.unwrap();
    /// let _held = m.lock()?.unwrap();
    /// let again = m.try_lock_for(Duration::from_millis(5))?;
    /// assert!(matches!(again, Err(TryLockError::WouldBlock)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock_for(&self, timeout: Duration) -> io::Result<TryLockResult<CMutexGuard<'_, T>>> {
        let Some(deadline) = Deadline::after(timeout) else {
            return self.lock().map(|locked| locked.map_err(TryLockError::from));
        };
        // SAFETY: the mutex is initialised (constructors' contracts).
        let rc = unsafe { ffi::mutex_lock_until(self.mutex.get(), deadline) };
        Ok(would_block(self.acquired(rc, libc::ETIMEDOUT)?))
    }

    /// Blocks until the lock is held or `deadline` passes (the time left is measured as for
    /// [`ShmMutex::try_lock_until`](crate::generic::ShmMutex::try_lock_until)).
    ///
    /// # Errors
    ///
    /// As for [`try_lock_for`](Self::try_lock_for).
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::interop::{CMutex, CMutexOptions};
    /// use std::time::{Duration, Instant};
    /// # let mut place = std::mem::MaybeUninit::<CMutex<u8>>::uninit();
    /// # let opts = CMutexOptions::new().robust(false);
    /// // SAFETY: `place` is ours and outlives `m`; not robust, on the stack.
    /// let m = unsafe { CMutex::init(place.as_mut_ptr(), 0u8, opts) }.unwrap();
    /// let deadline = Instant::now() + Duration::from_millis(5);
    /// assert!(m.try_lock_until(deadline)?.is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock_until(
        &self,
        deadline: Instant,
    ) -> io::Result<TryLockResult<CMutexGuard<'_, T>>> {
        self.try_lock_for(deadline.saturating_duration_since(Instant::now()))
    }

    /// The C mutex, for C code in this process (`pthread_cond_wait` on the C side, say).
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmsync::interop::{CMutex, CMutexOptions};
    /// # let mut place = std::mem::MaybeUninit::<CMutex<u8>>::uninit();
    /// # let opts = CMutexOptions::new().robust(false);
    /// // SAFETY: `place` is ours and outlives `m`; not robust, on the stack.
    /// let m = unsafe { CMutex::init(place.as_mut_ptr(), 0u8, opts) }.unwrap();
    /// assert_eq!(m.as_ptr().cast::<u8>(), place.as_mut_ptr().cast::<u8>());
    /// ```
    pub fn as_ptr(&self) -> *mut libc::pthread_mutex_t {
        self.mutex.get()
    }

    /// Maps a lock call's result code: 0 and `EOWNERDEAD` give a guard, `busy` (`EBUSY` or
    /// `ETIMEDOUT`) gives `None`, anything else is the `io::Error` a C peer can cause.
    fn acquired(
        &self,
        rc: c_int,
        busy: c_int,
    ) -> io::Result<Option<LockResult<CMutexGuard<'_, T>>>> {
        let inconsistent = match rc {
            0 => false,
            libc::EOWNERDEAD => true,
            rc if rc == busy && rc != 0 => return Ok(None),
            // The code itself, so that callers can match `raw_os_error()` as C code does.
            rc => return Err(io::Error::from_raw_os_error(rc)),
        };
        let guard = CMutexGuard {
            mutex: self,
            inconsistent,
            _not_send: PhantomData,
        };
        guard.check_value()?;
        Ok(Some(if inconsistent {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }))
    }
}

/// A timed or non-blocking attempt's result: `None` (busy) becomes `WouldBlock`.
fn would_block<G>(locked: Option<LockResult<G>>) -> TryLockResult<G> {
    match locked {
        Some(Ok(guard)) => Ok(guard),
        Some(Err(poisoned)) => Err(TryLockError::Poisoned(poisoned)),
        None => Err(TryLockError::WouldBlock),
    }
}

impl<T> fmt::Debug for CMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CMutex")
            .field("mutex", &self.mutex.get())
            .finish_non_exhaustive()
    }
}

/// Proof that a [`CMutex`] is held; unlocks it on drop.
///
/// A guard from `EOWNERDEAD` (inside a `PoisonError`) is *inconsistent*: the data may be half
/// updated. Repair it, then [`mark_consistent`](Self::mark_consistent); dropping the guard
/// without doing so makes the mutex unusable for every process (`ENOTRECOVERABLE`), which is
/// how C's robust mutexes tell the others that recovery failed.
///
/// # Examples
///
/// ```
/// # use shmsync::interop::{CMutex, CMutexGuard, CMutexOptions};
/// # let mut place = std::mem::MaybeUninit::<CMutex<u32>>::uninit();
/// # let opts = CMutexOptions::new().robust(false);
/// // SAFETY: `place` is ours and outlives `m`; not robust, on the stack.
/// let m = unsafe { CMutex::init(place.as_mut_ptr(), 1u32, opts) }.unwrap();
/// let guard = match m.lock()? {
///     Ok(guard) => guard,
///     Err(poisoned) => {
///         let mut guard = poisoned.into_inner();
///         *guard = 0; // repair
///         CMutexGuard::mark_consistent(&mut guard);
///         guard
///     }
/// };
/// assert!(CMutexGuard::is_consistent(&guard));
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "if unused the CMutex will immediately unlock"]
pub struct CMutexGuard<'a, T> {
    mutex: &'a CMutex<T>,
    /// Taken with `EOWNERDEAD` and not yet marked consistent.
    inconsistent: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only, which is fine when `T: Sync`.
unsafe impl<T: Sync> Sync for CMutexGuard<'_, T> {}

impl<T> CMutexGuard<'_, T> {
    /// Marks the mutex consistent after its previous holder died (`pthread_mutex_consistent`),
    /// once the data is repaired: it then unlocks normally and stays usable. Does nothing on a
    /// guard that is consistent already.
    ///
    /// # Examples
    ///
    /// See [`CMutexGuard`].
    pub fn mark_consistent(this: &mut Self) {
        if this.inconsistent {
            // SAFETY: this thread holds the mutex, which it got with EOWNERDEAD.
            unsafe { ffi::mutex_consistent(this.mutex.mutex.get()) };
            this.inconsistent = false;
        }
    }

    /// Whether the guard is consistent: taken from a live holder, or marked since.
    ///
    /// # Examples
    ///
    /// See [`CMutexGuard`].
    pub fn is_consistent(this: &Self) -> bool {
        !this.inconsistent
    }

}

impl<T: ShmSafe> CMutexGuard<'_, T> {
    /// Refuses data whose bytes are not a valid `T`, where `T`'s can be checked; the guard is
    /// dropped (the lock released) with the error.
    fn check_value(&self) -> io::Result<()> {
        if T::BIT_PATTERNS != BitPatterns::Checked {
            return Ok(());
        }
        // SAFETY: this thread holds the lock, so no one writes the data; it is aligned and
        // readable (constructors' contracts).
        if unsafe { T::is_valid_bit_pattern(self.mutex.data.get()) } {
            return Ok(());
        }
        Err(crate::sys::error::invalid_data(format!(
            "CMutex at {:p}: the data's bytes are not a valid {}",
            self.mutex.mutex.get(),
            core::any::type_name::<T>()
        )))
    }
}

impl<T> Deref for CMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this thread holds the lock, so no one writes the value.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for CMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this thread holds the lock exclusively.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T> Drop for CMutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard proves this thread holds the lock.
        let rc = unsafe { libc::pthread_mutex_unlock(self.mutex.mutex.get()) };
        // Only a mutex overwritten while held fails here; never panic inside a panic.
        if rc != 0 && !std::thread::panicking() {
            crate::sys::error::bug("pthread_mutex_unlock", rc);
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for CMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
