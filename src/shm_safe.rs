//! The `ShmSafe` trait: what may live in shared memory, and its structural layout fingerprint.

use core::mem::{align_of, size_of};
use core::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicIsize, AtomicU16, AtomicU32,
    AtomicU64, AtomicU8, AtomicUsize,
};

/// Plain data that is valid in every process that maps it.
///
/// A `ShmSafe` type holds no pointer, reference, file descriptor or other process-local
/// handle, and has no drop glue: a [`ShmBox`](crate::ShmBox) never runs a destructor of the
/// shared value. Implemented for integers, floats, `bool`, `char`, atomics, arrays and tuples
/// (up to 12) of `ShmSafe` types, and for both backends' mutexes and condition variables.
///
/// Write `#[derive(ShmSafe)]` on a `#[repr(C)]` (or `#[repr(transparent)]`) struct: the derive
/// checks the `repr` and every field, and computes the struct's layout fingerprint from its
/// fields' offsets and fingerprints, so two programs that declare the same struct agree
/// whatever they call it.
///
/// `ShmMutex<Vec<u8>>`, `ShmMutex<&u8>`, `ShmMutex<Box<u8>>` and `ShmMutex<String>` do not
/// compile:
///
/// ```compile_fail
/// let m = shmsync::ShmMutex::new(Vec::<u8>::new());
/// ```
///
/// # Safety
///
/// - Every field of the type, recursively, is meaningful in any process that maps the same
///   bytes: no pointers, references, handles or process-local ids.
/// - Types with invalid bit patterns (`bool`, `char`, and structs holding them) rely on every
///   process that can write the segment storing only valid values: shmsync trusts the
///   processes that may write a segment (see the crate-level limits).
/// - The type has a fixed layout (`#[repr(C)]` or `#[repr(transparent)]` for structs).
/// - The type has no `Drop` impl and no drop glue.
/// - When `FINGERPRINT` is overridden, it must change whenever the layout does. A hand-written
///   impl that keeps the default gets a fingerprint of its size and alignment only.
///
/// # Examples
///
/// ```
/// use shmsync::ShmSafe;
///
/// #[derive(ShmSafe)]
/// #[repr(C)]
/// struct Stats {
///     hits: u64,
///     misses: u64,
/// }
///
/// #[repr(C)]
/// struct ByHand {
///     value: u32,
/// }
/// // SAFETY: one plain integer field, repr(C), no destructor.
/// unsafe impl ShmSafe for ByHand {}
///
/// let boxed = shmsync::ShmBox::new(Stats { hits: 1, misses: 2 }).unwrap();
/// assert_eq!(boxed.hits + boxed.misses, 3);
/// ```
pub unsafe trait ShmSafe: Sized {
    /// The structural layout fingerprint: primitive kinds, array lengths, field offsets and
    /// backend ids, never type names. Compared when a named segment is opened.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmSafe;
    /// assert_ne!(u64::FINGERPRINT, i64::FINGERPRINT);
    /// assert_ne!(u64::FINGERPRINT, <[u32; 2]>::FINGERPRINT);
    /// ```
    const FINGERPRINT: u64 = fingerprint::opaque(size_of::<Self>(), align_of::<Self>());

    /// A bit set of the synchronization backends the type contains (see
    /// [`BackendId`](crate::BackendId)); zero for plain data.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmSafe;
    /// assert_eq!(u64::BACKENDS, 0);
    /// ```
    const BACKENDS: u32 = 0;

    /// Evaluates to `()` only for types without drop glue; referenced by every constructor,
    /// so a `ShmSafe` type with a destructor fails to compile where it is first used.
    #[doc(hidden)]
    const ASSERT_NO_DROP: () = assert!(
        !core::mem::needs_drop::<Self>(),
        "a ShmSafe type must not have drop glue"
    );
}

/// Compile-time fingerprint arithmetic shared by the impls and the derive.
#[doc(hidden)]
pub mod fingerprint {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const BASIS: u64 = 0xcbf2_9ce4_8422_2325;

    /// Kinds of leaf and composite layouts.
    pub const OPAQUE: u64 = 1;
    pub const ARRAY: u64 = 2;
    pub const TUPLE: u64 = 3;
    pub const STRUCT: u64 = 4;
    pub const MUTEX: u64 = 5;
    pub const CONDVAR: u64 = 6;
    pub const PRIMITIVE: u64 = 7;

    /// Starts a fingerprint of a composite of `kind`.
    pub const fn start(kind: u64) -> u64 {
        mix(BASIS, kind)
    }

    /// Folds one 64-bit word into a running fingerprint (FNV-1a over the word's bytes).
    pub const fn mix(mut hash: u64, word: u64) -> u64 {
        let mut i = 0;
        while i < 8 {
            hash ^= (word >> (i * 8)) & 0xff;
            hash = hash.wrapping_mul(PRIME);
            i += 1;
        }
        hash
    }

    /// Closes a fingerprint with the composite's size and alignment.
    pub const fn finish(hash: u64, size: usize, align: usize) -> u64 {
        mix(mix(hash, size as u64), align as u64)
    }

    /// The fingerprint of a type known only by size and alignment.
    pub const fn opaque(size: usize, align: usize) -> u64 {
        finish(start(OPAQUE), size, align)
    }

    /// The fingerprint of a primitive; `code` names its kind (integer, float, atomic, ...).
    pub const fn primitive(code: u64, size: usize, align: usize) -> u64 {
        finish(mix(start(PRIMITIVE), code), size, align)
    }
}

macro_rules! primitives {
    ($($code:literal => $($ty:ty),+;)*) => {$($(
        // SAFETY: a plain value with no pointers and no destructor, valid in any process.
        unsafe impl ShmSafe for $ty {
            const FINGERPRINT: u64 =
                fingerprint::primitive($code, size_of::<$ty>(), align_of::<$ty>());
        }
    )+)*};
}

primitives! {
    1 => u8, u16, u32, u64, u128, usize;
    2 => i8, i16, i32, i64, i128, isize;
    3 => f32, f64;
    4 => bool;
    5 => char;
    6 => AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize;
    7 => AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize;
    8 => AtomicBool;
}

// SAFETY: an array of ShmSafe elements is contiguous plain data without drop glue.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const FINGERPRINT: u64 = fingerprint::finish(
        fingerprint::mix(
            fingerprint::mix(fingerprint::start(fingerprint::ARRAY), T::FINGERPRINT),
            N as u64,
        ),
        size_of::<Self>(),
        align_of::<Self>(),
    );
    const BACKENDS: u32 = T::BACKENDS;
}

macro_rules! tuples {
    ($(($($name:ident . $idx:tt),*);)*) => {$(
        // SAFETY: a tuple of ShmSafe fields; its field offsets are part of the fingerprint, so
        // processes whose compilers laid it out differently refuse each other's segments.
        unsafe impl<$($name: ShmSafe),*> ShmSafe for ($($name,)*) {
            const FINGERPRINT: u64 = {
                #[allow(unused_mut)]
                let mut hash = fingerprint::start(fingerprint::TUPLE);
                $(
                    hash = fingerprint::mix(hash, core::mem::offset_of!(Self, $idx) as u64);
                    hash = fingerprint::mix(hash, $name::FINGERPRINT);
                )*
                fingerprint::finish(hash, size_of::<Self>(), align_of::<Self>())
            };
            const BACKENDS: u32 = 0 $(| $name::BACKENDS)*;
        }
    )*};
}

tuples! {
    ();
    (A.0);
    (A.0, B.1);
    (A.0, B.1, C.2);
    (A.0, B.1, C.2, D.3);
    (A.0, B.1, C.2, D.3, E.4);
    (A.0, B.1, C.2, D.3, E.4, F.5);
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6);
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8);
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9);
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10);
    (A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_kinds_and_array_lengths_differ() {
        assert_ne!(u64::FINGERPRINT, i64::FINGERPRINT);
        assert_ne!(u64::FINGERPRINT, <[u32; 2]>::FINGERPRINT);
        assert_ne!(<[u32; 2]>::FINGERPRINT, <[u32; 3]>::FINGERPRINT);
        assert_ne!(<(u32, u64)>::FINGERPRINT, <(u64, u32)>::FINGERPRINT);
        assert_ne!(u32::FINGERPRINT, AtomicU32::FINGERPRINT);
    }
}
