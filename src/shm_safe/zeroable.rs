//! `ShmZeroable`: types whose all-zero bytes are a valid value, so that a big value can be
//! made in fresh shared memory, which the kernel hands out zero-filled, without building it
//! anywhere first.

use core::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicIsize, AtomicU16, AtomicU32,
    AtomicU64, AtomicU8, AtomicUsize,
};

use super::ShmSafe;

/// A [`ShmSafe`] type for which all-zero bytes are a valid value, ready to use as it is.
///
/// This is what lets [`ShmBox::new_zeroed`](crate::ShmBox::new_zeroed),
/// [`create_zeroed`](crate::ShmBox::create_zeroed), the `_with` constructors and the
/// `ShmRef` equivalents make a value of any size in place: fresh shared pages are already
/// zero, so nothing is built on the stack, copied, or even touched.
///
/// Implemented for integers, floats, `bool` (`false`), `char` (`'\0'`), the atomics, arrays
/// and tuples (up to 12) of `ShmZeroable` types, and the mutexes and condition variables of
/// both backends: their all-zero bytes are the state `ShmMutex::new` and `ShmCondvar::new`
/// make (unlocked, not poisoned; for the pthread backend, "not initialised yet", which the
/// first lock in any process initialises in place, whatever the C library's own initialiser
/// looks like). A mutex is `ShmZeroable` when its value is.
///
/// Write `#[derive(ShmZeroable)]` next to `#[derive(ShmSafe)]` on a struct: the derive checks
/// that every field is `ShmZeroable`, as bytemuck's `Zeroable` derive does.
///
/// # Safety
///
/// - A value whose bytes are all zero (padding included) is a valid `Self`.
/// - That value is fully usable with no further init step, in any process that maps it: a
///   primitive's all-zero state is the state its constructor makes.
///
/// # Examples
///
/// ```
/// use shmsync::{ShmBox, ShmMutex, ShmSafe, ShmZeroable};
///
/// #[derive(ShmSafe, ShmZeroable)]
/// #[repr(C)]
/// struct Frame {
///     seq: u64,
///     pixels: [u8; 1 << 20],
/// }
///
/// // 1 MiB, never on the stack, in a debug build too.
/// let frame = ShmBox::<ShmMutex<Frame>>::new_zeroed().unwrap();
/// frame.lock().unwrap().pixels[12345] = 7;
/// ```
///
/// A field that is not `ShmZeroable` (here `NonZeroTag`, whose zero is not a value) does not
/// compile:
///
/// ```compile_fail
/// use shmsync::{ShmSafe, ShmZeroable};
///
/// #[repr(C)]
/// struct NonZeroTag(u32);
/// // SAFETY: one integer field, repr(C), no destructor.
/// unsafe impl ShmSafe for NonZeroTag {}
///
/// #[derive(ShmSafe, ShmZeroable)]
/// #[repr(C)]
/// struct Tagged {
///     tag: NonZeroTag,
/// }
/// ```
pub unsafe trait ShmZeroable: ShmSafe {}

macro_rules! zeroable {
    ($($ty:ty),* $(,)?) => {$(
        // SAFETY: zero is a value of every integer and integer atomic, 0.0 of the floats,
        // `false` of `bool` and `AtomicBool`, U+0000 of `char`.
        unsafe impl ShmZeroable for $ty {}
    )*};
}

zeroable! {
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool, char,
    AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize,
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicBool,
}

// SAFETY: an array of all-zero elements, with no bytes of its own.
unsafe impl<T: ShmZeroable, const N: usize> ShmZeroable for [T; N] {}

macro_rules! tuples {
    ($(($($name:ident),*);)*) => {$(
        // SAFETY: every field is all-zero valid; padding may hold any bytes.
        unsafe impl<$($name: ShmZeroable),*> ShmZeroable for ($($name,)*) {}
    )*};
}

tuples! {
    ();
    (A);
    (A, B);
    (A, B, C);
    (A, B, C, D);
    (A, B, C, D, E);
    (A, B, C, D, E, F);
    (A, B, C, D, E, F, G);
    (A, B, C, D, E, F, G, H);
    (A, B, C, D, E, F, G, H, I);
    (A, B, C, D, E, F, G, H, I, J);
    (A, B, C, D, E, F, G, H, I, J, K);
    (A, B, C, D, E, F, G, H, I, J, K, L);
}
