//! Placeholder: replaced by the futex backend.
use crate::backend::{Acquired, BackendId, RawMutex, Sealed};
use crate::sys::time::Deadline;

/// The futex backend's raw mutex.
#[repr(C)]
pub struct RawFutexMutex {
    word: crate::sync::AtomicU32,
}
impl Sealed for RawFutexMutex {}
// SAFETY: placeholder.
unsafe impl RawMutex for RawFutexMutex {
    const ID: BackendId = BackendId::Futex;
    const INIT: Self = RawFutexMutex {
        word: crate::sync::AtomicU32::new(0),
    };
    fn lock(&self) -> Acquired {
        unimplemented!()
    }
    fn try_lock(&self) -> Option<Acquired> {
        unimplemented!()
    }
    fn try_lock_until(&self, _deadline: Deadline) -> Option<Acquired> {
        unimplemented!()
    }
    unsafe fn unlock(&self) {
        unimplemented!()
    }
}
/// The futex backend's condition variable.
pub type RawFutexCondvar = crate::backend::seq_condvar::SeqCondvar<RawFutexMutex>;
