//! In-process checks of the pthread mutex; the cross-process ones are in `tests/`.

use super::*;
use std::time::Duration;

/// Behaviour cannot show `PTHREAD_PROCESS_SHARED` on glibc: its robust mutexes always use
/// shared futexes (the kernel's exit-time wake never uses the private flag), so a robust
/// private mutex happens to work across processes too. So these read the initialised mutex's
/// kind bits, and `ffi::tests` reads the attributes back.
#[cfg(all(
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod glibc_layout {
    use super::*;

    /// `PTHREAD_MUTEX_ROBUST_NORMAL_NP` in glibc's `__kind`.
    const KIND_ROBUST: i32 = 16;
    /// `PTHREAD_MUTEX_PSHARED_BIT` in glibc's `__kind`.
    const KIND_PSHARED: i32 = 128;

    /// The `__kind` of `m` after a first lock and unlock.
    fn kind_after_first_lock(m: &RawPthreadMutex) -> i32 {
        m.lock();
        // SAFETY: this thread holds the lock.
        unsafe { m.unlock() };
        // `struct __pthread_mutex_s` on 64-bit glibc: __lock, __count, __owner, __nusers,
        // then __kind at byte 16 (ABI: the static initialisers spell it out).
        // SAFETY: the mutex is initialised and unlocked; nothing else touches it.
        unsafe { m.mutex.get().cast::<i32>().add(4).read() }
    }

    #[test]
    fn mutex_kept_mapped_by_shmsync_is_robust_and_process_shared() {
        let kind = kind_after_first_lock(robust_static());
        assert_eq!(kind & KIND_ROBUST, KIND_ROBUST, "__kind {kind:#x}");
        assert_eq!(kind & KIND_PSHARED, KIND_PSHARED, "__kind {kind:#x}");
    }

    #[test]
    fn mutex_on_the_stack_or_heap_is_process_shared_but_not_robust() {
        let (on_stack, on_heap) = (RawPthreadMutex::INIT, Box::new(RawPthreadMutex::INIT));
        for m in [&on_stack, &*on_heap] {
            let kind = kind_after_first_lock(m);
            assert_eq!(kind & KIND_ROBUST, 0, "__kind {kind:#x}");
            assert_eq!(kind & KIND_PSHARED, KIND_PSHARED, "__kind {kind:#x}");
        }
    }

    #[test]
    fn init_value_is_all_zero() {
        let m = RawPthreadMutex::INIT;
        // SAFETY: the init word is an initialised, 4-byte-aligned u32 at the struct's start.
        let word = unsafe { core::ptr::addr_of!(m.init).cast::<u32>().read() };
        assert_eq!(word, 0);
        // SAFETY: the libc crate defines `pthread_mutex_t` here as a plain byte array.
        let bytes = unsafe { &*m.mutex.get().cast::<[u8; 40]>() };
        assert!(bytes.iter().all(|&b| b == 0));
    }
}

#[test]
fn lock_try_lock_unlock() {
    let m = RawPthreadMutex::INIT;
    assert_eq!(m.try_lock(), Some(Acquired::Clean));
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(m.try_lock(), None));
    });
    // SAFETY: this thread holds the lock.
    unsafe { m.unlock() };
    assert_eq!(m.lock(), Acquired::Clean);
    // SAFETY: this thread holds the lock.
    unsafe { m.unlock() };
}

#[test]
fn timed_lock_times_out_while_another_thread_holds() {
    let m = RawPthreadMutex::INIT;
    m.lock();
    std::thread::scope(|s| {
        s.spawn(|| {
            let deadline = Deadline::after(Duration::from_millis(20)).unwrap();
            assert_eq!(m.try_lock_until(deadline), None);
            assert!(deadline.passed());
            let past = Deadline::now();
            assert_eq!(m.try_lock_until(past), None);
        });
    });
    // SAFETY: this thread holds the lock.
    unsafe { m.unlock() };
    let past = Deadline::now();
    assert_eq!(m.try_lock_until(past), Some(Acquired::Clean));
    // SAFETY: this thread holds the lock.
    unsafe { m.unlock() };
}

/// A mutex in memory registered as kept mapped (leaked, so it stays so), where it is set up
/// robust as in a `ShmBox`.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn robust_static() -> &'static RawPthreadMutex {
    let m: &'static RawPthreadMutex = Box::leak(Box::new(RawPthreadMutex::INIT));
    let zone = crate::region::zones::Zone::register(
        m as *const RawPthreadMutex as usize,
        core::mem::size_of::<RawPthreadMutex>(),
    );
    core::mem::forget(zone);
    m
}

/// Runs a thread that locks `m` and exits holding it. `join` (pthread_join) returns after the
/// kernel has walked the thread's robust list; a scoped thread's end would not wait for that.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn die_holding(m: &'static RawPthreadMutex) {
    std::thread::spawn(|| assert_eq!(m.lock(), Acquired::Clean))
        .join()
        .unwrap();
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
#[test]
fn a_thread_exiting_with_the_lock_is_reported_once() {
    let m = robust_static();
    // The thread ends holding the lock: robust mutexes hand EOWNERDEAD to the next locker.
    die_holding(m);
    assert_eq!(m.lock(), Acquired::OwnerDied);
    // SAFETY: this thread holds the lock (and marked it consistent).
    unsafe { m.unlock() };
    assert_eq!(m.try_lock(), Some(Acquired::Clean));
    // SAFETY: this thread holds the lock.
    unsafe { m.unlock() };
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
#[test]
fn try_lock_and_timed_lock_also_report_owner_death() {
    let m = robust_static();
    for attempt in 0..2 {
        die_holding(m);
        let got = match attempt {
            0 => m.try_lock(),
            _ => m.try_lock_until(Deadline::after(Duration::from_secs(10)).unwrap()),
        };
        assert_eq!(got, Some(Acquired::OwnerDied));
        // SAFETY: this thread holds the lock.
        unsafe { m.unlock() };
    }
}

#[cfg(target_os = "linux")]
#[test]
#[should_panic(expected = "ENOTRECOVERABLE")]
fn a_mutex_left_unrecoverable_by_foreign_code_panics_clearly() {
    let m = robust_static();
    die_holding(m);
    // Foreign code takes the dead owner's lock and unlocks without marking it consistent.
    // SAFETY: `m` is initialised (it was locked once).
    let rc = unsafe { libc::pthread_mutex_lock(m.mutex.get()) };
    assert_eq!(rc, libc::EOWNERDEAD);
    // SAFETY: this thread holds the lock.
    let rc = unsafe { libc::pthread_mutex_unlock(m.mutex.get()) };
    assert_eq!(rc, 0);
    m.lock();
}
