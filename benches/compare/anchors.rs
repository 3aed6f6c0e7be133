//! The anchors shmsync is compared with: the classic C-style primitives, written plainly.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

/// `futex(FUTEX_WAIT)` on a shared (non-private) futex word, no timeout.
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live aligned u32; a null timeout means wait forever.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// `futex(FUTEX_WAKE)` on a shared futex word.
pub fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a live aligned u32, used only as a key.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
}

/// The textbook 0/1/2 futex mutex (unlocked / locked / locked with waiters), shared futex.
#[repr(C)]
pub struct RawFutexMutex {
    state: AtomicU32,
}

impl RawFutexMutex {
    pub const fn new() -> Self {
        RawFutexMutex {
            state: AtomicU32::new(0),
        }
    }

    #[inline]
    pub fn lock(&self) {
        // 0 => 1: uncontended.
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0;
        while self.state.load(Ordering::Relaxed) == 1 && spins < 100 {
            std::hint::spin_loop();
            spins += 1;
        }
        // 0 => 1 after spinning.
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        while self.state.swap(2, Ordering::Acquire) != 0 {
            futex_wait(&self.state, 2);
        }
    }

    /// Locks as a waiter moved onto the lock word does: always leaves 2 (waiters may sleep).
    pub fn lock_as_contended(&self) {
        while self.state.swap(2, Ordering::Acquire) != 0 {
            futex_wait(&self.state, 2);
        }
    }

    /// Marks a held lock "with waiters" (1 => 2), so that its unlock wakes one; a free lock
    /// is left alone.
    pub fn mark_contended(&self) {
        let _ = self
            .state
            .compare_exchange(1, 2, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The lock word, for requeueing onto it.
    pub fn word(&self) -> &AtomicU32 {
        &self.state
    }

    #[inline]
    pub fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            futex_wake(&self.state, 1);
        }
    }
}

/// A robust, process-shared `pthread_mutex_t` as a C program would set it up.
#[repr(C)]
pub struct RawPthreadMutex {
    inner: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: pthread mutexes are made for sharing between threads and processes.
unsafe impl Sync for RawPthreadMutex {}

impl RawPthreadMutex {
    /// Initialises a mutex in place; `robust` adds `PTHREAD_MUTEX_ROBUST`.
    ///
    /// # Safety
    ///
    /// - `at` points to writable memory for a `RawPthreadMutex`, not in use.
    pub unsafe fn init(at: *mut RawPthreadMutex, robust: bool) {
        // SAFETY: attr is initialised by pthread_mutexattr_init before use; `at` is valid.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            if robust {
                libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            }
            assert_eq!(libc::pthread_mutex_init((*at).inner.get(), &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
    }

    #[inline]
    pub fn lock(&self) {
        // SAFETY: the mutex was initialised by `init`.
        let rc = unsafe { libc::pthread_mutex_lock(self.inner.get()) };
        if rc == libc::EOWNERDEAD {
            // SAFETY: we hold the mutex after EOWNERDEAD.
            unsafe { libc::pthread_mutex_consistent(self.inner.get()) };
        } else {
            debug_assert_eq!(rc, 0);
        }
    }

    #[inline]
    pub fn unlock(&self) {
        // SAFETY: called by the holder.
        unsafe { libc::pthread_mutex_unlock(self.inner.get()) };
    }

    pub fn as_ptr(&self) -> *mut libc::pthread_mutex_t {
        self.inner.get()
    }
}

/// A process-shared `pthread_cond_t` (CLOCK_MONOTONIC), for the ping-pong anchor.
#[repr(C)]
pub struct RawPthreadCond {
    inner: UnsafeCell<libc::pthread_cond_t>,
}

// SAFETY: pthread condvars are made for sharing between threads and processes.
unsafe impl Sync for RawPthreadCond {}

impl RawPthreadCond {
    /// # Safety
    ///
    /// - `at` points to writable memory for a `RawPthreadCond`, not in use.
    pub unsafe fn init(at: *mut RawPthreadCond) {
        // SAFETY: attr is initialised before use; `at` is valid.
        unsafe {
            let mut attr: libc::pthread_condattr_t = std::mem::zeroed();
            libc::pthread_condattr_init(&mut attr);
            libc::pthread_condattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            assert_eq!(libc::pthread_cond_init((*at).inner.get(), &attr), 0);
            libc::pthread_condattr_destroy(&mut attr);
        }
    }

    pub fn wait(&self, m: &RawPthreadMutex) {
        // SAFETY: both initialised; the caller holds `m`.
        unsafe { libc::pthread_cond_wait(self.inner.get(), m.as_ptr()) };
    }

    pub fn signal(&self) {
        // SAFETY: initialised.
        unsafe { libc::pthread_cond_signal(self.inner.get()) };
    }

    pub fn broadcast(&self) {
        // SAFETY: initialised.
        unsafe { libc::pthread_cond_broadcast(self.inner.get()) };
    }
}

/// Anonymous `MAP_SHARED` memory holding a `T`, shared with children forked later. Leaked:
/// the benchmark process is short-lived.
pub fn shared<T>(init: impl FnOnce(*mut T)) -> &'static T {
    let len = std::mem::size_of::<T>().max(1);
    // SAFETY: a fresh anonymous shared mapping.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    init(ptr.cast());
    // SAFETY: initialised by `init`; never unmapped.
    unsafe { &*ptr.cast::<T>() }
}

/// `value` in a `ShmBox` (anonymous shared memory, shared with children forked later), as
/// users place shmsync's primitives; leaked: the benchmark process is short-lived. (The
/// pthread backend sets up robust mutexes only in memory that shmsync keeps mapped.)
pub fn boxed<T: shmsync::ShmSafe + Sync>(value: T) -> &'static T {
    let shm = shmsync::ShmBox::new(value).expect("ShmBox::new");
    Box::leak(Box::new(shm))
}

/// A raw lock and the counter it protects, as a C program lays them out.
#[repr(C)]
pub struct Guarded<M> {
    pub lock: M,
    pub counter: UnsafeCell<u64>,
}

// SAFETY: the counter is only touched while `lock` is held.
unsafe impl<M: Sync> Sync for Guarded<M> {}

/// A counter behind some lock, shared between processes.
pub trait Counter: Sync + 'static {
    /// Locks, increments, unlocks.
    fn incr(&self);
    /// The current count (taken under the lock).
    fn get(&self) -> u64;
}

impl Counter for shmsync::futex::ShmMutex<u64> {
    #[inline]
    fn incr(&self) {
        *self.lock().unwrap() += 1;
    }
    fn get(&self) -> u64 {
        *self.lock().unwrap()
    }
}

impl Counter for shmsync::pthread::ShmMutex<u64> {
    #[inline]
    fn incr(&self) {
        *self.lock().unwrap() += 1;
    }
    fn get(&self) -> u64 {
        *self.lock().unwrap()
    }
}

/// The two raw anchors' lock and unlock, so one `Counter` impl serves both.
pub trait RawLock: Sync + 'static {
    fn acquire(&self);
    fn release(&self);
}

impl RawLock for RawFutexMutex {
    fn acquire(&self) {
        self.lock();
    }
    fn release(&self) {
        self.unlock();
    }
}

impl RawLock for RawPthreadMutex {
    fn acquire(&self) {
        self.lock();
    }
    fn release(&self) {
        self.unlock();
    }
}

impl<M: RawLock> Counter for Guarded<M> {
    #[inline]
    fn incr(&self) {
        self.lock.acquire();
        // SAFETY: the lock is held.
        unsafe { *self.counter.get() += 1 };
        self.lock.release();
    }
    fn get(&self) -> u64 {
        self.lock.acquire();
        // SAFETY: the lock is held.
        let v = unsafe { *self.counter.get() };
        self.lock.release();
        v
    }
}

/// The four counters every multi-process section compares, each in its own shared mapping.
pub struct Counters {
    pub futex: &'static shmsync::futex::ShmMutex<u64>,
    pub pthread: &'static shmsync::pthread::ShmMutex<u64>,
    pub raw_futex: &'static Guarded<RawFutexMutex>,
    pub raw_robust: &'static Guarded<RawPthreadMutex>,
}

impl Counters {
    pub fn new() -> Counters {
        Counters {
            futex: boxed(shmsync::futex::ShmMutex::new(0)),
            pthread: boxed(shmsync::pthread::ShmMutex::new(0)),
            raw_futex: shared(|p: *mut Guarded<RawFutexMutex>| {
                // SAFETY: `p` is fresh shared memory for one guarded counter.
                unsafe {
                    p.write(Guarded {
                        lock: RawFutexMutex::new(),
                        counter: UnsafeCell::new(0),
                    })
                }
            }),
            raw_robust: shared(|p: *mut Guarded<RawPthreadMutex>| {
                // SAFETY: fresh shared memory (zeroed, so the counter is 0); mutex set up in place.
                unsafe { RawPthreadMutex::init(std::ptr::addr_of_mut!((*p).lock), true) }
            }),
        }
    }
}
