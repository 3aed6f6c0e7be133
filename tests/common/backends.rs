//! The backends as types a test body can be generic over, and `backend_tests!`, which runs
//! such bodies once per backend.

use shmsync::generic::{self, RawCondvar, RawMutex};

/// One backend's raw lock and condition variable, for test bodies written once as
/// `fn body<B: Backend>()`.
pub trait Backend: 'static {
    /// The raw lock behind the backend's `ShmMutex`.
    type R: RawMutex;
    /// The raw condition variable behind the backend's `ShmCondvar`.
    type C: RawCondvar<Mutex = Self::R>;
}

/// The backend `B`'s `ShmMutex<T>`.
pub type Mutex<B, T> = generic::ShmMutex<T, <B as Backend>::R>;
/// The backend `B`'s `ShmCondvar`.
pub type Condvar<B> = generic::ShmCondvar<<B as Backend>::C>;

/// The backend of `shmsync::futex`.
pub struct Futex;
/// The backend of `shmsync::pthread`.
pub struct Pthread;

impl Backend for Futex {
    type R = RawOf<shmsync::futex::ShmMutex<()>>;
    type C = RawOf<shmsync::futex::ShmCondvar>;
}

impl Backend for Pthread {
    type R = RawOf<shmsync::pthread::ShmMutex<()>>;
    type C = RawOf<shmsync::pthread::ShmCondvar>;
}

/// The raw type inside a public primitive: the raw types themselves have no public name.
pub trait Raw {
    /// The raw lock or condition variable.
    type Raw;
}

impl<T, R: RawMutex> Raw for generic::ShmMutex<T, R> {
    type Raw = R;
}

impl<C: RawCondvar> Raw for generic::ShmCondvar<C> {
    type Raw = C;
}

/// The raw type inside the public primitive `P`.
pub type RawOf<P> = <P as Raw>::Raw;

/// Runs generic test bodies on every backend: a module per backend (`futex`, `pthread`)
/// holding one `#[test]` per body, which calls the body with that backend's [`Backend`].
/// `backend_tests!(a, b)` makes `futex::a`, calling `a::<Futex>()` of the invoking module;
/// `backend_tests!(mutex { a } poison { b })` makes `futex::mutex::a`, calling `mutex::a`.
#[allow(unused_macros)]
macro_rules! backend_tests {
    ($($test:ident),+ $(,)?) => {
        mod futex { backend_tests!(@ Futex, super; $($test)+); }
        mod pthread { backend_tests!(@ Pthread, super; $($test)+); }
    };
    ($($group:ident { $($test:ident),+ $(,)? })+) => {
        mod futex { $(mod $group { backend_tests!(@ Futex, super::super::$group; $($test)+); })+ }
        mod pthread { $(mod $group { backend_tests!(@ Pthread, super::super::$group; $($test)+); })+ }
    };
    (@ $b:ident, $bodies:path; $($test:ident)+) => {
        use $bodies as bodies;
        $(#[test] fn $test() { bodies::$test::<$crate::common::backends::$b>() })+
    };
}
