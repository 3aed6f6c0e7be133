//! The `ShmSafe` trait: what may live in shared memory, and its structural layout fingerprint.

use core::mem::{align_of, size_of};

mod impls;
mod zeroable;

pub use zeroable::ShmZeroable;

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
/// whatever they call it. It also generates the check of placed bytes (see
/// [`BIT_PATTERNS`](Self::BIT_PATTERNS)): a field-by-field check, so a struct holding a `bool`
/// is checked, one of integers needs none, and one holding a pthread-backend mutex cannot be
/// checked.
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
/// - `BIT_PATTERNS` is [`BitPatterns::Any`] only if every bit pattern of the type's size is a
///   valid value (padding bytes aside), and [`BitPatterns::Checked`] only if
///   [`is_valid_bit_pattern`](Self::is_valid_bit_pattern) returns `true` for valid values only
///   and reads nothing outside the value. A type whose validity cannot be checked keeps the
///   default, [`BitPatterns::Unchecked`].
/// - `BACKENDS` names the backend of every primitive the type holds (the derive and the
///   impls of arrays and tuples combine their fields'). A pthread-backend mutex in a type that
///   does not say so still works, but a `ShmBox` of it does not set it up robust.
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
/// // SAFETY: one plain integer field, repr(C), no destructor; every bit pattern is a `u32`.
/// unsafe impl ShmSafe for ByHand {
///     const BIT_PATTERNS: shmsync::BitPatterns = shmsync::BitPatterns::Any;
/// }
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

    /// Which bit patterns of the type are values, so that bytes someone else wrote can be
    /// checked before they are trusted as a `Self` ([`ShmRef::attach_in`](crate::ShmRef::attach_in),
    /// [`ShmBox::open`](crate::ShmBox::open)).
    ///
    /// [`Any`](BitPatterns::Any) for integers, floats, integer atomics and the futex backend's
    /// primitives; [`Checked`](BitPatterns::Checked) for `bool`, `char` and `AtomicBool`;
    /// [`Unchecked`](BitPatterns::Unchecked) for pthread-backend primitives (their C library
    /// internals cannot be checked) and, by default, for hand-written impls. Arrays, tuples,
    /// mutexes and derived structs combine their parts' with [`BitPatterns::and`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{BitPatterns, ShmSafe};
    /// assert_eq!(u64::BIT_PATTERNS, BitPatterns::Any);
    /// assert_eq!(<(u64, bool)>::BIT_PATTERNS, BitPatterns::Checked);
    /// assert_eq!(shmsync::pthread::ShmMutex::<u64>::BIT_PATTERNS, BitPatterns::Unchecked);
    /// ```
    const BIT_PATTERNS: BitPatterns = BitPatterns::Unchecked;

    /// Whether the `size_of::<Self>()` bytes at `ptr` are a valid `Self`. Called only for
    /// types whose [`BIT_PATTERNS`](Self::BIT_PATTERNS) is [`Checked`](BitPatterns::Checked);
    /// the default answers `true` for [`Any`](BitPatterns::Any) and `false` otherwise.
    ///
    /// An impl checks each field through the field type's own `is_valid_bit_pattern`, or
    /// reads raw bytes with [`read_volatile`](core::ptr::read_volatile) as integers.
    ///
    /// # Safety
    ///
    /// - `ptr` is non-null, aligned for `Self` and valid for reads of `size_of::<Self>()`
    ///   bytes, all initialised (any byte of a mapping is).
    /// - Those bytes may hold any pattern and other processes may write them meanwhile, so the
    ///   impl never makes a `&Self` (or a reference to a part) from them and reads them only
    ///   as integers.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmSafe;
    /// let forged = 2u8;
    /// // SAFETY: `forged` is one readable, initialised byte, aligned for `bool`.
    /// let valid = unsafe { bool::is_valid_bit_pattern((&forged as *const u8).cast()) };
    /// assert!(!valid);
    /// ```
    #[inline]
    unsafe fn is_valid_bit_pattern(ptr: *const Self) -> bool {
        let _ = ptr;
        Self::BIT_PATTERNS == BitPatterns::Any
    }

    /// Evaluates to `()` only for types without drop glue; referenced by every constructor,
    /// so a `ShmSafe` type with a destructor fails to compile where it is first used.
    #[doc(hidden)]
    const ASSERT_NO_DROP: () = assert!(
        !core::mem::needs_drop::<Self>(),
        "a ShmSafe type must not have drop glue"
    );
}

/// Fails to compile, where a constructor for `T` is instantiated, when `T` has drop glue
/// (see [`ShmSafe::ASSERT_NO_DROP`]). Every constructor of shared values starts with it. A
/// macro, not a function: the error then names the user's call of the constructor.
macro_rules! assert_no_drop {
    ($t:ty) => {
        #[allow(clippy::let_unit_value)]
        let () = <$t as $crate::ShmSafe>::ASSERT_NO_DROP;
    };
}
pub(crate) use assert_no_drop;

/// Which bit patterns of a [`ShmSafe`] type are valid values, as
/// [`ShmSafe::BIT_PATTERNS`] declares it.
///
/// # Examples
///
/// ```
/// use shmsync::BitPatterns::{Any, Checked, Unchecked};
/// assert_eq!(Any.and(Checked), Checked);
/// assert_eq!(Checked.and(Unchecked), Unchecked);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitPatterns {
    /// Every bit pattern is a value: there is nothing to check.
    Any,
    /// Some bit patterns are not values, and
    /// [`ShmSafe::is_valid_bit_pattern`] tells them apart.
    Checked,
    /// The bytes cannot be checked: only shmsync's own writes (or a caller's promise) make
    /// them a valid value.
    Unchecked,
}

impl BitPatterns {
    /// The patterns of a composite of two parts with `self` and `other`: the weaker of the
    /// two, `Unchecked` before `Checked` before `Any`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::BitPatterns;
    /// assert_eq!(BitPatterns::Any.and(BitPatterns::Any), BitPatterns::Any);
    /// ```
    pub const fn and(self, other: BitPatterns) -> BitPatterns {
        match (self, other) {
            (BitPatterns::Unchecked, _) | (_, BitPatterns::Unchecked) => BitPatterns::Unchecked,
            (BitPatterns::Checked, _) | (_, BitPatterns::Checked) => BitPatterns::Checked,
            (BitPatterns::Any, BitPatterns::Any) => BitPatterns::Any,
        }
    }
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
    pub const SEMAPHORE: u64 = 8;
    pub const BARRIER: u64 = 10;

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
