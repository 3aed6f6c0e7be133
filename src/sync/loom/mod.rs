//! The loom flavour of the `sync` door: the same names, backed by loom.
//!
//! - [`AtomicU32`] wraps a loom atomic created on first use, so that `const fn new` and the
//!   `const INIT` of the raw locks still compile; every access is a loom operation.
//! - [`DataCell`] keeps a mutex's value and reports each guard's access to a loom cell, so a
//!   lock that fails to order two holders is a causality violation.
//! - [`word`] emulates shared futexes with one loom mutex and condvar over a table of
//!   sleepers, as vasi-sync does.
//! - [`Deadline`] is simulated (see its docs).
//! - [`liveness`] is a liveness oracle: each model thread is one simulated process.
//!
//! Loom runs the threads of a model one at a time, on one OS thread, and only switches
//! between them at loom operations; the lazily made loom objects rely on that (see [`Lazy`]).

mod cell;
mod clock;
pub(crate) mod liveness;
pub(crate) mod word;

pub mod api;

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use std::sync::atomic::AtomicU8;

use crate::sync::Ordering;

pub(crate) use self::cell::{Access, DataCell};
pub use self::clock::Deadline;

/// A value made on first use, without drop glue (a `ShmSafe` type may have none, and the
/// primitives are `ShmSafe`). What it holds is never dropped: loom objects own no memory.
pub(crate) struct Lazy<T> {
    /// [`EMPTY`], [`BUSY`] or [`READY`].
    state: AtomicU8,
    slot: UnsafeCell<MaybeUninit<T>>,
}

/// Nothing made yet.
const EMPTY: u8 = 0;
/// One thread is making the value.
const BUSY: u8 = 1;
/// The value is made and never changes again.
const READY: u8 = 2;

// SAFETY: the slot is written once, by the thread that moved `state` EMPTY => BUSY, and read
// only after `state` is READY (Release/Acquire); `T` is shared only as `&T`, and loom's
// objects are used from the model's threads, one at a time.
unsafe impl<T: Send + Sync> Sync for Lazy<T> {}

impl<T> Lazy<T> {
    pub(crate) const fn new() -> Self {
        Lazy {
            state: AtomicU8::new(EMPTY),
            slot: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, made by `make` if no one made it yet.
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> T) -> &T {
        loop {
            match self.state.load(Ordering::Acquire) {
                READY => break,
                // EMPTY => BUSY: this thread makes the value.
                EMPTY => {
                    if self
                        .state
                        .compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Acquire)
                        .is_ok()
                    {
                        let value = make();
                        // SAFETY: only the thread that won EMPTY => BUSY writes the slot, and
                        // nobody reads it before READY.
                        unsafe { (*self.slot.get()).write(value) };
                        self.state.store(READY, Ordering::Release);
                        break;
                    }
                }
                _ => std::hint::spin_loop(),
            }
        }
        // SAFETY: the state is READY, so the slot was written and is never written again.
        unsafe { (*self.slot.get()).assume_init_ref() }
    }
}

/// Defines a loom atomic of one width that can be built in a `const`: its loom object is
/// made on first use, from the initial value.
macro_rules! const_atomic {
    ($(#[$attr:meta])* $name:ident, $int:ty, $loom:ty) => {
        $(#[$attr])*
        pub(crate) struct $name {
            init: $int,
            cell: Lazy<$loom>,
        }

        const _: () = assert!(!core::mem::needs_drop::<$name>());

        #[allow(dead_code)]
        impl $name {
            pub(crate) const fn new(v: $int) -> Self {
                $name {
                    init: v,
                    cell: Lazy::new(),
                }
            }
            fn get(&self) -> &$loom {
                self.cell.get_or_init(|| <$loom>::new(self.init))
            }
            pub(crate) fn load(&self, o: Ordering) -> $int {
                self.get().load(o)
            }
            pub(crate) fn store(&self, v: $int, o: Ordering) {
                self.get().store(v, o)
            }
            pub(crate) fn swap(&self, v: $int, o: Ordering) -> $int {
                self.get().swap(v, o)
            }
            pub(crate) fn fetch_add(&self, v: $int, o: Ordering) -> $int {
                self.get().fetch_add(v, o)
            }
            pub(crate) fn fetch_sub(&self, v: $int, o: Ordering) -> $int {
                self.get().fetch_sub(v, o)
            }
            pub(crate) fn fetch_and(&self, v: $int, o: Ordering) -> $int {
                self.get().fetch_and(v, o)
            }
            pub(crate) fn fetch_or(&self, v: $int, o: Ordering) -> $int {
                self.get().fetch_or(v, o)
            }
            pub(crate) fn compare_exchange(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                self.get().compare_exchange(current, new, success, failure)
            }
        }

        impl crate::sync::MakeModel for $name {
            /// Makes the loom atomic now, so that its creation happens before other threads
            /// use it.
            fn make_model(&self) {
                self.get();
            }
        }
    };
}

const_atomic!(
    /// A loom `AtomicU32` that can be built in a `const`.
    AtomicU32,
    u32,
    loom::sync::atomic::AtomicU32
);
const_atomic!(
    /// A loom `AtomicU64` that can be built in a `const`.
    AtomicU64,
    u64,
    loom::sync::atomic::AtomicU64
);

/// No spinning under loom: spinning only re-reads the word, and would multiply the states.
pub(crate) struct SpinWait;

impl SpinWait {
    pub(crate) fn new() -> Self {
        SpinWait
    }
    pub(crate) fn spin(&mut self) -> bool {
        false
    }
}
