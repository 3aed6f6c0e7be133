//! Process-shared synchronization primitives that survive crashed processes.
//!
//! `shmsync` puts a [`ShmMutex`] and a [`ShmCondvar`] with `std::sync`'s API into memory that
//! several processes map, and gives that memory a type: [`ShmBox<T>`] holds a `T` in an
//! anonymous mapping shared with forked children, a POSIX named segment, a System V
//! segment, or a memfd whose descriptor is passed to other processes
//! ([`ShmBox::memfd_create`], [`ShmBox::from_fd`]), and [`ShmRef`] places one into memory the
//! application already maps. [`ShmSafe`]
//! decides at compile time what may live there, and [`ShmZeroable`] which values can be made
//! in place at any size ([`ShmBox::new_zeroed`], [`ShmBox::open_or_create_with`], ...). On
//! Linux, `ShmSemaphore` counts permits across processes and gives back those of a holder
//! that dies, and `ShmBarrier` lines processes up generation after generation and breaks,
//! instead of hanging, when one of them dies.
//!
//! # Examples
//!
//! ```
//! use shmsync::{ShmBox, ShmMutex, ShmSafe};
//!
//! #[derive(ShmSafe)]
//! #[repr(C)]
//! struct Totals {
//!     count: u64,
//!     sum: u64,
//! }
//!
//! let shared = ShmBox::new(ShmMutex::new(Totals { count: 0, sum: 0 })).unwrap();
//! // fork() here: the children share `shared` with the parent.
//! let mut totals = shared.lock().unwrap();
//! totals.count += 1;
//! totals.sum += 42;
//! ```
//!
//! # Choosing a backend
//!
//! Both backends have the same API; [`ShmMutex`], [`ShmMutexGuard`], [`MappedShmMutexGuard`]
//! and [`ShmCondvar`] at the crate root are the default (`futex` on Linux, `pthread`
//! elsewhere). They are type aliases: the methods are written once, on the types of
//! [`generic`] ([`generic::ShmMutex`], [`generic::ShmCondvar`]), and every alias's page lists
//! them too.
//!
//! | | [`futex`] (default on Linux) | [`pthread`] |
//! | --- | --- | --- |
//! | platforms | Linux | Linux, and other Unixes with weaker promises |
//! | `ShmMutex<()>` size | 12 bytes | 56 bytes (a 40-byte `pthread_mutex_t` inside) |
//! | uncontended lock + unlock | one CAS + one swap, no system call | `pthread_mutex_lock`/`unlock` (robust: a little slower) |
//! | owner death detected | by waiters asking the kernel whether the owner's liveness lock is gone (within 16 ms) | by the kernel's robust list at exit (immediately) |
//! | processes in different PID namespaces, without `/proc`, behind `hidepid` | supported | supported |
//! | a holder that `exec`s | dead (poison) | dead if it locked on its main thread |
//! | interoperates with C programs | yes, through the C API (the `shmsync-capi` crate and `include/shmsync.h`): C processes lock, wait and notify the same primitives with the same poisoning and CLOCK_MONOTONIC timeouts | yes, with a C program's own `pthread_mutex_t`: [`interop::CMutex`] has C's layout (robust or not, `PTHREAD_PRIO_INHERIT`), and [`interop::ForeignSegment`] maps C programs' segments; `ShmMutex` itself keeps shmsync's layout |
//!
//! Pick `futex` for speed and size; pick `pthread` when the immediate, kernel-driven
//! owner-death notice matters more than speed. Neither backend ever hands a lock to another
//! process because its holder cannot be seen: a holder is dead only when the kernel says so.
//!
//! # Differences from `std::sync`
//!
//! - Poisoning is shared by every process that maps the primitive, and the death of the
//!   process holding the lock poisons it too. [`generic::ShmMutex::clear_poison`] clears it for
//!   everyone.
//! - Values must be [`ShmSafe`]: no pointers, references, handles or drop glue.
//! - Added: [`ShmMutex::try_lock_for`] and [`try_lock_until`](ShmMutex::try_lock_until),
//!   [`ShmCondvar::wait_until`] and [`wait_while_until`](ShmCondvar::wait_while_until)
//!   (deadlines as `Instant`s); every timeout is measured on CLOCK_MONOTONIC.
//! - [`ShmCondvar::notify_one`] returns whether it woke a sleeping waiter and
//!   [`notify_all`](ShmCondvar::notify_all) how many, as in parking_lot.
//! - [`ShmMutexGuard::map`](generic::ShmMutexGuard::map) and
//!   [`try_map`](generic::ShmMutexGuard::try_map) give a [`MappedShmMutexGuard`], like
//!   std's mapped guards (unstable there).
//! - One [`ShmCondvar`] may serve several mutexes at once on Linux (see its docs); std's
//!   `Condvar` may panic when used with more than one mutex on some platforms.
//! - Guards are not `Send`, as in std; a guard must not cross `fork` (the child is another
//!   process: dropping an inherited guard there would unlock the parent's lock).
//! - A `ShmBox` never runs the shared value's destructor.
//!
//! # Model-checking with loom
//!
//! Built with `RUSTFLAGS="--cfg shmsync_loom"`, the futex backend's atomics, futex calls,
//! clock and process liveness run through [loom](https://docs.rs/loom), so `loom::model`
//! explores every interleaving of a protocol written on [`ShmMutex`] and [`ShmCondvar`], with
//! threads standing in for processes. See the `loom` module (present only under that cfg) and
//! `docs/design.md`; a normal build has no loom in its dependency tree.
//!
//! # Limits
//!
//! - One host only: shared memory does not cross machines. Locking across hosts is a job for
//!   a lease service (etcd, ZooKeeper), not for shmsync.
//! - Processes that share primitives must share `/dev/shm` (where every process holds its
//!   liveness lock); opening a segment made by a process that sees another `/dev/shm` is
//!   `Unsupported`. PID namespaces, a missing `/proc` and `hidepid` are fine.
//! - A process that stops (SIGSTOP, a debugger) while holding a lock is alive: the others wait.
//! - The `pthread` backend builds on other Unixes; robust mutexes (owner-death recovery) exist
//!   only where the platform has them (Linux, FreeBSD; not macOS). Only Linux is tested.
//! - A `pthread` mutex is robust (a holder's death poisons it) only in memory that shmsync
//!   keeps mapped while glibc's robust lists may point into it: a [`ShmBox`], or a raw
//!   [`ShmRef`] placement. Elsewhere it is process-shared but not robust (see [`pthread`]).
//! - Every process that can write a segment is trusted: opening validates the header and checks
//!   the value's bytes where they can be checked (a `bool` or `char` holding a value it cannot
//!   take is `InvalidData`; see [`ShmSafe::BIT_PATTERNS`]), but a writer that stores an invalid
//!   value later, corrupts a pthread mutex's internals, or truncates the segment (the next
//!   access faults with SIGBUS; memfd segments are sealed against this) can break the others. That is why opening refuses segments
//!   owned (or, for System V, created) by other users unless [`ShmOptions::trust_owner`] says
//!   otherwise, refuses segments that their group or other users may write unless
//!   [`ShmOptions::allow_group_or_other_write`] says otherwise, and why the default mode is
//!   `0600`.
//! - A process's identity is cached and reset in forked children by a `pthread_atfork`
//!   handler; a child made without running atfork handlers (raw `clone`/`clone3`,
//!   `syscall(SYS_fork)`, `_Fork`) must `exec` before it touches a primitive.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod backend;
mod condvar;
mod mutex;
mod region;
mod shm_safe;
mod sync;
mod sys;

sync::with_futex! {
    pub mod futex;
    mod semaphore;
    #[doc(inline)]
    pub use futex::{MappedShmMutexGuard, ShmCondvar, ShmMutex, ShmMutexGuard};
    pub use semaphore::{ShmSemaphore, ShmSemaphorePermit};
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub use semaphore::__test_hooks as __semaphore_test_hooks;
}
sync::with_futex! {
    mod barrier;
    pub use barrier::{BarrierError, BarrierWaitResult, ShmBarrier, ShmBarrierParty};
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub use barrier::__test_hooks as __barrier_test_hooks;
}
sync::without_futex! {
    #[doc(inline)]
    pub use pthread::{MappedShmMutexGuard, ShmCondvar, ShmMutex, ShmMutexGuard};
}
sync::native_only! {
    pub mod pthread;
    pub mod interop;
}

#[cfg(shmsync_loom)]
pub use sync::loom::api as loom;

/// The backend-generic types behind the per-backend aliases
/// ([`futex`], [`pthread`]) and the crate-level defaults.
///
/// The raw traits are sealed: the two backends are the only implementations.
///
/// # Examples
///
/// ```
/// use shmsync::generic::RawMutex;
///
/// fn backend_of<T, R: RawMutex>(_: &shmsync::generic::ShmMutex<T, R>) -> shmsync::BackendId {
///     R::ID
/// }
/// let m = shmsync::pthread::ShmMutex::new(0u8);
/// assert_eq!(backend_of(&m), shmsync::BackendId::Pthread);
/// ```
pub mod generic {
    pub use crate::backend::{Acquired, RawCondvar, RawMutex};
    pub use crate::condvar::ShmCondvar;
    pub use crate::mutex::{MappedShmMutexGuard, ShmMutex, ShmMutexGuard};
    pub use crate::sync::Deadline;
}

pub use backend::{BackendId, LockOwner};
pub use condvar::WaitTimeoutResult;
pub use region::{
    segment_in_use, segment_info, unlink, unlink_unused, SegmentInfo, SegmentState, ShmBox,
    ShmOptions, ShmRef, SysvKey,
};
pub use shm_safe::{BitPatterns, ShmSafe, ShmZeroable};
pub use shmsync_derive::{ShmSafe, ShmZeroable};

#[doc(hidden)]
pub mod __private {
    pub use crate::shm_safe::fingerprint;
}
