//! Placeholder: replaced by the pthread backend.
use crate::backend::{Acquired, BackendId, RawMutex, Sealed};
use crate::sys::time::Deadline;

/// The pthread backend's raw mutex.
#[repr(C)]
pub struct RawPthreadMutex {
    word: crate::sync::AtomicU32,
}
impl Sealed for RawPthreadMutex {}
// SAFETY: placeholder.
unsafe impl RawMutex for RawPthreadMutex {
    const ID: BackendId = BackendId::Pthread;
    const INIT: Self = RawPthreadMutex {
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
/// The pthread backend's condition variable.
pub type RawPthreadCondvar = crate::backend::seq_condvar::SeqCondvar<RawPthreadMutex>;
