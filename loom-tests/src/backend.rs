//! The backend traits as shmsync declares them (they are crate-private there), and the
//! futex backend's sources included verbatim.
#![allow(dead_code, missing_docs)]

use crate::sync::Deadline;

#[path = "../../src/backend/futex/mod.rs"]
pub mod futex;
#[path = "../../src/backend/seq_condvar.rs"]
pub mod seq_condvar;

/// Identifies a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendId {
    Futex = 0,
    Pthread = 1,
}

/// How a lock was acquired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    Clean,
    OwnerDied,
}

pub trait Sealed {}

/// Mirror of `shmsync::generic::RawMutex`.
///
/// # Safety
///
/// - As in shmsync: exclusive ownership on return of the locking methods.
pub unsafe trait RawMutex: Sealed + Send + Sync + Sized + 'static {
    const ID: BackendId;
    const INIT: Self;
    fn lock(&self) -> Acquired;
    fn try_lock(&self) -> Option<Acquired>;
    fn try_lock_until(&self, deadline: Deadline) -> Option<Acquired>;
    /// # Safety
    ///
    /// - The calling thread holds the lock.
    unsafe fn unlock(&self);
}

/// Mirror of `shmsync::generic::RawCondvar`.
///
/// # Safety
///
/// - As in shmsync: `wait` returns with the mutex held.
pub unsafe trait RawCondvar: Sealed + Send + Sync + Sized + 'static {
    type Mutex: RawMutex;
    const INIT: Self;
    /// # Safety
    ///
    /// - The calling thread holds `mutex`.
    unsafe fn wait(&self, mutex: &Self::Mutex, deadline: Option<Deadline>) -> (Acquired, bool);
    fn notify_one(&self);
    fn notify_all(&self);
}
