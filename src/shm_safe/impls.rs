//! `ShmSafe` for the primitives, arrays and tuples: their fingerprints and bit-pattern checks.

use core::mem::{align_of, size_of};
use core::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicIsize, AtomicU16, AtomicU32,
    AtomicU64, AtomicU8, AtomicUsize,
};

use super::{fingerprint, BitPatterns, ShmSafe};

macro_rules! primitives {
    ($($code:literal => $($ty:ty),+;)*) => {$($(
        // SAFETY: a plain value with no pointers and no destructor, valid in any process;
        // every bit pattern of an integer, a float or an integer atomic is a value.
        unsafe impl ShmSafe for $ty {
            const FINGERPRINT: u64 =
                fingerprint::primitive($code, size_of::<$ty>(), align_of::<$ty>());
            const BIT_PATTERNS: BitPatterns = BitPatterns::Any;
        }
    )+)*};
}

primitives! {
    1 => u8, u16, u32, u64, u128, usize;
    2 => i8, i16, i32, i64, i128, isize;
    3 => f32, f64;
    6 => AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize;
    7 => AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize;
}

/// Whether the byte at `ptr` is 0 or 1, the only values of `bool` and `AtomicBool`.
///
/// # Safety
///
/// - `ptr` is valid for reads of one initialised byte.
unsafe fn is_bool_byte(ptr: *const u8) -> bool {
    // SAFETY: one readable byte (caller's contract); volatile, since other processes may
    // write it meanwhile.
    unsafe { ptr.read_volatile() <= 1 }
}

macro_rules! booleans {
    ($($code:literal => $ty:ty;)*) => {$(
        // SAFETY: a plain value with no pointers and no destructor, valid in any process; only
        // the bytes 0 and 1 are values, and the check reads the one byte.
        unsafe impl ShmSafe for $ty {
            const FINGERPRINT: u64 =
                fingerprint::primitive($code, size_of::<$ty>(), align_of::<$ty>());
            const BIT_PATTERNS: BitPatterns = BitPatterns::Checked;

            #[inline]
            unsafe fn is_valid_bit_pattern(ptr: *const Self) -> bool {
                // SAFETY: `ptr` is valid for reads of the value's one byte (caller's contract).
                unsafe { is_bool_byte(ptr.cast()) }
            }
        }
    )*};
}

booleans! {
    4 => bool;
    8 => AtomicBool;
}

// SAFETY: a plain value with no pointers and no destructor, valid in any process; the check
// reads the value as a `u32` and accepts exactly the Unicode scalar values.
unsafe impl ShmSafe for char {
    const FINGERPRINT: u64 = fingerprint::primitive(5, size_of::<char>(), align_of::<char>());
    const BIT_PATTERNS: BitPatterns = BitPatterns::Checked;

    #[inline]
    unsafe fn is_valid_bit_pattern(ptr: *const Self) -> bool {
        // SAFETY: `ptr` is aligned and readable for a char, which is a u32 in memory (caller's
        // contract); volatile, since other processes may write it meanwhile.
        let bits = unsafe { ptr.cast::<u32>().read_volatile() };
        char::from_u32(bits).is_some()
    }
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
    const BIT_PATTERNS: BitPatterns = T::BIT_PATTERNS;

    unsafe fn is_valid_bit_pattern(ptr: *const Self) -> bool {
        match T::BIT_PATTERNS {
            BitPatterns::Any => return true,
            BitPatterns::Unchecked => return false,
            BitPatterns::Checked => {}
        }
        let first = ptr.cast::<T>();
        // SAFETY: the N elements lie back to back within the array (caller's contract).
        (0..N).all(|i| unsafe { T::is_valid_bit_pattern(first.add(i)) })
    }
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
            const BIT_PATTERNS: BitPatterns = BitPatterns::Any $(.and($name::BIT_PATTERNS))*;

            #[allow(unused_variables, unused_mut)]
            unsafe fn is_valid_bit_pattern(ptr: *const Self) -> bool {
                let mut valid = Self::BIT_PATTERNS != BitPatterns::Unchecked;
                $(
                    // SAFETY: the field lies within the tuple (caller's contract); `addr_of!`
                    // makes no reference to its unchecked bytes.
                    valid = valid && unsafe {
                        $name::is_valid_bit_pattern(core::ptr::addr_of!((*ptr).$idx))
                    };
                )*
                valid
            }
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

    /// Checks the bytes of `bytes` as a `T`; the buffer is aligned for any primitive here.
    fn check<T: ShmSafe>(bytes: &[u8]) -> bool {
        #[repr(C, align(16))]
        struct Aligned([u8; 32]);
        let mut buf = Aligned([0; 32]);
        buf.0[..bytes.len()].copy_from_slice(bytes);
        assert!(size_of::<T>() <= 32);
        // SAFETY: the buffer is 16-aligned, initialised and large enough for T.
        unsafe { T::is_valid_bit_pattern(buf.0.as_ptr().cast()) }
    }

    #[test]
    fn bool_and_char_check_their_bytes() {
        assert!(check::<bool>(&[0]) && check::<bool>(&[1]));
        assert!(!check::<bool>(&[2]) && !check::<AtomicBool>(&[0xff]));
        assert!(check::<char>(&0x10_ffffu32.to_ne_bytes()));
        assert!(!check::<char>(&0xd800u32.to_ne_bytes()));
        assert!(!check::<char>(&0x11_0000u32.to_ne_bytes()));
    }

    #[test]
    fn composites_check_every_part() {
        assert_eq!(<[u32; 4]>::BIT_PATTERNS, BitPatterns::Any);
        assert_eq!(<[bool; 4]>::BIT_PATTERNS, BitPatterns::Checked);
        assert!(check::<[bool; 3]>(&[1, 0, 1]));
        assert!(!check::<[bool; 3]>(&[1, 0, 7]));
        assert_eq!(<(u8, char)>::BIT_PATTERNS, BitPatterns::Checked);
        let mut tuple = [0u8; 8];
        tuple[4..].copy_from_slice(&0xdfffu32.to_ne_bytes());
        assert!(!check::<(u8, char)>(&tuple));
        tuple[4..].copy_from_slice(&u32::from('z').to_ne_bytes());
        assert!(check::<(u8, char)>(&tuple));
        assert_eq!(<()>::BIT_PATTERNS, BitPatterns::Any);
    }
}
