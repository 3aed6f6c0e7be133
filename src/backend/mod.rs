//! The raw lock algorithms behind the public types: one state machine per backend.
//!
//! The public [`ShmMutex`](crate::generic::ShmMutex) and
//! [`ShmCondvar`](crate::generic::ShmCondvar) are written once over the sealed [`RawMutex`]
//! and [`RawCondvar`] traits; each backend module implements them.

use crate::sync::{native_only, with_futex, Deadline};

with_futex! {
    pub(crate) mod barrier;
    pub(crate) mod futex;
    pub(crate) mod semaphore;
    pub(crate) mod seq_condvar;
}
/// The switch of a seeded bug that the loom models must catch: process-wide, off unless a
/// test turns it on, and always off without the `test-hooks` feature.
pub(crate) struct Mutant {
    #[cfg(feature = "test-hooks")]
    on: std::sync::atomic::AtomicBool,
}

impl Mutant {
    pub(crate) const fn new() -> Mutant {
        Mutant {
            #[cfg(feature = "test-hooks")]
            on: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the bug is switched on.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "test-hooks")]
        return self.on.load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(feature = "test-hooks"))]
        false
    }

    /// Switches the bug on or off for the whole process.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, std::sync::atomic::Ordering::Relaxed);
    }
}

with_futex! {
    /// The start of a sleep on a wake counter, as the semaphore and the barrier do it: sets
    /// `sleepers` in `state` (so that whoever changes it next bumps `wakes` and wakes us),
    /// then reads `wakes` and `state` again (both `Acquire`). Returns the count to sleep on and
    /// the state re-read after it, for the caller's last look; `None` when the state changed
    /// under the compare-exchange.
    pub(crate) fn announce_sleep(
        state: &crate::sync::AtomicU64,
        sleepers: u64,
        wakes: &crate::sync::AtomicU32,
    ) -> Option<(u32, u64)> {
        use crate::sync::Ordering::{Acquire, Relaxed};
        let seen = state.load(Relaxed);
        if seen & sleepers == 0 {
            // seen => seen | sleepers
            state
                .compare_exchange(seen, seen | sleepers, Relaxed, Relaxed)
                .ok()?;
        }
        let seq = wakes.load(Acquire);
        Some((seq, state.load(Acquire)))
    }
}

/// A state word and a table of tokens as the test hooks read them (Relaxed, one at a time).
#[cfg(feature = "test-hooks")]
pub(crate) fn snapshot<const N: usize>(
    state: &crate::sync::AtomicU64,
    table: &[crate::sync::AtomicU32; N],
) -> (u64, [u32; N]) {
    use crate::sync::Ordering::Relaxed;
    (
        state.load(Relaxed),
        core::array::from_fn(|i| table[i].load(Relaxed)),
    )
}

// Not under loom: its lock is the C library's, which loom cannot see into (see `shmsync::loom`).
native_only! {
    pub(crate) mod pthread;
}

/// Identifies a backend in a segment header and a layout fingerprint.
///
/// # Examples
///
/// ```
/// use shmsync::BackendId;
/// assert_ne!(BackendId::Futex.bit(), BackendId::Pthread.bit());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum BackendId {
    /// `shmsync::futex`: Linux futex words with owner-death detection.
    Futex = 0,
    /// `shmsync::pthread`: robust process-shared pthread mutexes.
    Pthread = 1,
}

impl BackendId {
    /// This backend's bit in [`ShmSafe::BACKENDS`](crate::ShmSafe::BACKENDS).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::BackendId::Pthread.bit(), 2);
    /// ```
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The backend's module name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::BackendId::Futex.name(), "futex");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            BackendId::Futex => "futex",
            BackendId::Pthread => "pthread",
        }
    }
}

impl BackendId {
    /// Which bit patterns of this backend's raw primitives are states it copes with.
    pub(crate) const fn bit_patterns(self) -> crate::BitPatterns {
        match self {
            // u32 words only (lock word, owner start time, condvar counter): every value is a
            // lock state or a count, and a forged one can only make the lock look held by
            // someone else or free; no value makes the algorithms touch other memory.
            BackendId::Futex => crate::BitPatterns::Any,
            // The C library's `pthread_mutex_t` holds a kind, an owner and robust-list links
            // that glibc writes through: no check can vouch for forged ones.
            BackendId::Pthread => crate::BitPatterns::Unchecked,
        }
    }
}

/// A readable name for a set of backend bits, for error messages.
pub(crate) fn describe_backends(bits: u32) -> String {
    let names: Vec<String> = (0..32)
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| match i {
            0 => BackendId::Futex.name().to_string(),
            1 => BackendId::Pthread.name().to_string(),
            other => format!("#{other}"),
        })
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join("+")
    }
}

/// How a lock was acquired.
///
/// # Examples
///
/// ```
/// use shmsync::generic::Acquired;
/// // The public API turns `OwnerDied` into a poisoned lock.
/// assert_ne!(Acquired::Clean, Acquired::OwnerDied);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// From an owner that released it.
    Clean,
    /// From an owner that died holding it: the protected data may be inconsistent.
    OwnerDied,
}

/// Who holds a lock, as far as the shared memory and the kernel tell: for logs and
/// diagnostics, such as saying who held a mutex when a `try_lock_for` timed out.
///
/// A snapshot: the holder may change the moment after it was read.
///
/// # Examples
///
/// ```
/// let m = shmsync::ShmMutex::new(0u8);
/// assert_eq!(m.owner(), None);
/// let guard = m.lock().unwrap();
/// let owner = m.owner().expect("held");
/// assert_eq!(owner.pid(), Some(std::process::id()));
/// assert!(!owner.is_dead());
/// drop(guard);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockOwner {
    pid: Option<u32>,
    dead: bool,
}

impl LockOwner {
    pub(crate) const fn new(pid: Option<u32>, dead: bool) -> LockOwner {
        LockOwner { pid, dead }
    }

    /// The holder's process ID (for the pthread backend: its thread ID) as the holder itself
    /// knows it, which is its number in its own PID namespace: in another namespace the same
    /// number may name another process, or none. `None` while the holder has not recorded it
    /// yet, or where the backend cannot tell.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmsync::ShmMutex::new(());
    /// let _held = m.lock().unwrap();
    /// assert_eq!(m.owner().and_then(|o| o.pid()), Some(std::process::id()));
    /// ```
    pub const fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the kernel says the holder is gone, so that the next locker takes the lock
    /// over and finds it poisoned. `false` means "not known to be dead": a holder that cannot
    /// be seen (another PID namespace, no `/proc`) counts as alive.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmsync::ShmMutex::new(());
    /// let _held = m.lock().unwrap();
    /// assert!(!m.owner().unwrap().is_dead());
    /// ```
    pub const fn is_dead(&self) -> bool {
        self.dead
    }
}

mod sealed {
    /// Seals the raw traits; a backend's loom objects are made through it in the model.
    pub trait Sealed: crate::sync::MakeModel {}
}
pub(crate) use sealed::Sealed;

/// A raw process-shared lock living in shared memory.
///
/// Sealed: implemented by the two backends only; the public types are written over it.
///
/// # Examples
///
/// ```
/// use shmsync::generic::{RawMutex, ShmMutex};
/// fn backend_name<T, R: RawMutex>(_: &ShmMutex<T, R>) -> &'static str {
///     R::ID.name()
/// }
/// assert_eq!(backend_name(&shmsync::futex::ShmMutex::new(0u8)), "futex");
/// ```
///
/// # Safety
///
/// - `lock`, `try_lock` (when `Some`) and `try_lock_until` (when `Some`) return only once the
///   caller holds the lock exclusively among every thread of every process mapping the bytes.
/// - The type is `#[repr(C)]`, holds no pointer or process-local handle, and `INIT` is a valid
///   unlocked state in any process, at any address, with no further init step.
/// - A holder's death never leaves other lockers blocked forever; the next locker gets
///   [`Acquired::OwnerDied`].
pub unsafe trait RawMutex: Sealed + Send + Sync + Sized + 'static {
    /// The backend this lock belongs to.
    const ID: BackendId;
    /// The unlocked state.
    const INIT: Self;
    /// Blocks until the lock is held.
    fn lock(&self) -> Acquired;
    /// Takes the lock if it is free now.
    fn try_lock(&self) -> Option<Acquired>;
    /// Blocks until the lock is held or `deadline` (CLOCK_MONOTONIC) passes.
    fn try_lock_until(&self, deadline: Deadline) -> Option<Acquired>;
    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// - The calling thread holds the lock.
    unsafe fn unlock(&self);
    /// Who holds the lock now, if anyone and if the backend can tell; never blocks and never
    /// changes the lock.
    fn owner(&self) -> Option<LockOwner>;
}

/// A raw process-shared condition variable paired with [`RawMutex`] `Self::Mutex`.
///
/// Sealed: implemented by the two backends only.
///
/// # Examples
///
/// ```
/// use shmsync::generic::{RawCondvar, RawMutex};
/// fn mutex_backend<C: RawCondvar>(_: &shmsync::generic::ShmCondvar<C>) -> shmsync::BackendId {
///     <C::Mutex as RawMutex>::ID
/// }
/// assert_eq!(mutex_backend(&shmsync::futex::ShmCondvar::new()), shmsync::BackendId::Futex);
/// ```
///
/// # Safety
///
/// - `wait` returns with the mutex held again, whatever happened while it slept.
/// - The type is `#[repr(C)]`, holds no pointer or process-local handle, and `INIT` is valid
///   in any process at any address.
/// - A waiter that dies inside `wait` never makes `notify_one` or `notify_all` block, and
///   never stops other waiters from waking (a `notify_one` whose chosen waiter dies before
///   re-locking may reach another waiter late, but reaches it).
pub unsafe trait RawCondvar: Sealed + Send + Sync + Sized + 'static {
    /// The mutex this condition variable works with.
    type Mutex: RawMutex;
    /// The initial state.
    const INIT: Self;
    /// Atomically releases `mutex` and sleeps until notified, spuriously woken, or
    /// `deadline` passes; then takes `mutex` again. Returns how the mutex was re-acquired and
    /// whether the deadline passed.
    ///
    /// # Safety
    ///
    /// - The calling thread holds `mutex`.
    unsafe fn wait(&self, mutex: &Self::Mutex, deadline: Option<Deadline>) -> (Acquired, bool);
    /// Wakes at least one waiter, if any; returns whether it woke a sleeping one (`true` when
    /// the implementation cannot tell).
    fn notify_one(&self) -> bool;
    /// Wakes every waiter; returns how many sleeping ones it woke (`0` when the
    /// implementation cannot tell).
    fn notify_all(&self) -> usize;
}
