//! Uncontended semaphore acquire + release, ns/op, in one process: `ShmSemaphore` against a
//! process-shared POSIX `sem_t` (`sem_wait`/`sem_post`) in shared memory.

use std::cell::UnsafeCell;
use std::hint::black_box;

use crate::anchors::{boxed, shared};
use crate::uncontended::ns_per_op;
use crate::{interleaved, print_section, scale};

/// A process-shared `sem_t`, as a C program sets one up.
#[repr(C)]
struct RawSem {
    inner: UnsafeCell<libc::sem_t>,
}

// SAFETY: POSIX semaphores are made for sharing between threads and processes.
unsafe impl Sync for RawSem {}

impl RawSem {
    fn wait(&self) {
        // SAFETY: initialised by `sem_init` in `run`; EINTR cannot happen here (no handlers).
        unsafe { libc::sem_wait(self.inner.get()) };
    }

    fn post(&self) {
        // SAFETY: as above.
        unsafe { libc::sem_post(self.inner.get()) };
    }
}

pub fn run() {
    let iters = (2_000_000.0 * scale()) as u64;
    let shm = boxed(shmsync::ShmSemaphore::new(1));
    let raw = shared(|p: *mut RawSem| {
        // SAFETY: `p` is fresh shared memory for one sem_t; pshared = 1, one permit.
        let rc = unsafe { libc::sem_init(std::ptr::addr_of_mut!((*p).inner).cast(), 1, 1) };
        assert_eq!(rc, 0, "sem_init");
    });
    let names = ["ShmSemaphore", "sem_t pshared"];
    let lines = interleaved(&names, "ns/op", || {
        vec![
            ns_per_op(iters, || drop(black_box(shm).acquire())),
            ns_per_op(iters, || {
                let sem = black_box(raw);
                sem.wait();
                sem.post();
            }),
        ]
    });
    print_section(
        "Uncontended semaphore acquire + release",
        &lines,
        &[("ShmSemaphore", "sem_t pshared")],
    );
}
