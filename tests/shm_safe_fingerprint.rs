//! The layout fingerprint is structural: names do not matter, kinds, order, lengths, offsets,
//! alignment and backends do.

use std::sync::atomic::{AtomicU32, AtomicU64};

use shmsync::{BackendId, ShmSafe};

#[derive(ShmSafe)]
#[repr(C)]
struct Point {
    x: u32,
    y: u64,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Coordinates {
    horizontal: u32,
    vertical: u64,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Tuple(u32, u64);

#[derive(ShmSafe)]
#[repr(C)]
struct Reordered {
    y: u64,
    x: u32,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Signed {
    x: i32,
    y: u64,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Narrow {
    x: u32,
    y: u32,
}

#[derive(ShmSafe)]
#[repr(C)]
struct ExplicitPadding {
    x: u32,
    pad: u32,
    y: u64,
}

#[derive(ShmSafe)]
#[repr(C, align(16))]
struct AlignedPoint {
    x: u32,
    y: u64,
}

#[derive(ShmSafe)]
#[repr(transparent)]
struct Wrapper(u64);

#[derive(ShmSafe)]
#[repr(C)]
struct Generic<T> {
    head: u32,
    tail: T,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Outer {
    inner: Point,
    flag: u8,
}

#[derive(ShmSafe)]
#[repr(C)]
struct OuterRenamed {
    nested: Coordinates,
    marker: u8,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Unit;

#[test]
fn same_structure_under_other_names_has_the_same_fingerprint() {
    assert_eq!(Point::FINGERPRINT, Coordinates::FINGERPRINT);
    assert_eq!(Point::FINGERPRINT, Tuple::FINGERPRINT);
    assert_eq!(Outer::FINGERPRINT, OuterRenamed::FINGERPRINT);
    assert_eq!(Generic::<u64>::FINGERPRINT, Point::FINGERPRINT);
}

#[test]
fn other_order_kinds_widths_padding_and_alignment_differ() {
    let all = [
        ("Point", Point::FINGERPRINT),
        ("Reordered", Reordered::FINGERPRINT),
        ("Signed", Signed::FINGERPRINT),
        ("Narrow", Narrow::FINGERPRINT),
        ("ExplicitPadding", ExplicitPadding::FINGERPRINT),
        ("AlignedPoint", AlignedPoint::FINGERPRINT),
        ("Generic<i64>", Generic::<i64>::FINGERPRINT),
        ("Generic<AtomicU64>", Generic::<AtomicU64>::FINGERPRINT),
        ("(u32, u64)", <(u32, u64)>::FINGERPRINT),
        ("[u32; 4]", <[u32; 4]>::FINGERPRINT),
        ("Outer", Outer::FINGERPRINT),
        ("Wrapper", Wrapper::FINGERPRINT),
        ("u64", u64::FINGERPRINT),
        ("Unit", Unit::FINGERPRINT),
    ];
    assert_all_differ(&all);
}

#[test]
fn primitive_kinds_and_array_lengths_differ() {
    let all = [
        ("u64", u64::FINGERPRINT),
        ("i64", i64::FINGERPRINT),
        ("f64", f64::FINGERPRINT),
        ("[u32; 2]", <[u32; 2]>::FINGERPRINT),
        ("[i32; 2]", <[i32; 2]>::FINGERPRINT),
        ("[u16; 4]", <[u16; 4]>::FINGERPRINT),
        ("[u64; 1]", <[u64; 1]>::FINGERPRINT),
        ("AtomicU64", AtomicU64::FINGERPRINT),
        ("(u64,)", <(u64,)>::FINGERPRINT),
        ("u32", u32::FINGERPRINT),
        ("AtomicU32", AtomicU32::FINGERPRINT),
        ("char", char::FINGERPRINT),
        ("f32", f32::FINGERPRINT),
        ("[u32; 3]", <[u32; 3]>::FINGERPRINT),
        ("bool", bool::FINGERPRINT),
        ("u8", u8::FINGERPRINT),
        ("[u8; 2]", <[u8; 2]>::FINGERPRINT),
        ("[[u8; 2]; 2]", <[[u8; 2]; 2]>::FINGERPRINT),
        ("[u8; 4]", <[u8; 4]>::FINGERPRINT),
    ];
    assert_all_differ(&all);
}

#[test]
fn mutexes_differ_by_value_type_and_backend() {
    use shmsync::{futex, pthread};
    let all = [
        ("futex<u64>", futex::ShmMutex::<u64>::FINGERPRINT),
        ("futex<i64>", futex::ShmMutex::<i64>::FINGERPRINT),
        ("futex<[u32; 2]>", futex::ShmMutex::<[u32; 2]>::FINGERPRINT),
        ("pthread<u64>", pthread::ShmMutex::<u64>::FINGERPRINT),
        ("pthread<i64>", pthread::ShmMutex::<i64>::FINGERPRINT),
        ("futex condvar", futex::ShmCondvar::FINGERPRINT),
        ("pthread condvar", pthread::ShmCondvar::FINGERPRINT),
        ("u64", u64::FINGERPRINT),
    ];
    assert_all_differ(&all);
    assert_eq!(
        shmsync::ShmMutex::<u64>::FINGERPRINT,
        futex::ShmMutex::<u64>::FINGERPRINT
    );
}

#[derive(ShmSafe)]
#[repr(C)]
struct Mixed {
    a: shmsync::futex::ShmMutex<u32>,
    b: [shmsync::pthread::ShmCondvar; 2],
    c: (u8, shmsync::futex::ShmCondvar),
}

#[test]
fn backend_bits_are_collected_through_fields_arrays_and_tuples() {
    use shmsync::{futex, pthread};
    assert_eq!(u64::BACKENDS, 0);
    assert_eq!(Point::BACKENDS, 0);
    assert_eq!(futex::ShmMutex::<u64>::BACKENDS, BackendId::Futex.bit());
    assert_eq!(
        pthread::ShmMutex::<[u8; 3]>::BACKENDS,
        BackendId::Pthread.bit()
    );
    assert_eq!(
        futex::ShmMutex::<pthread::ShmMutex<u8>>::BACKENDS,
        BackendId::Futex.bit() | BackendId::Pthread.bit()
    );
    assert_eq!(
        Mixed::BACKENDS,
        BackendId::Futex.bit() | BackendId::Pthread.bit()
    );
    assert_eq!(
        Generic::<futex::ShmCondvar>::BACKENDS,
        BackendId::Futex.bit()
    );
}

#[test]
fn hand_written_impls_default_to_size_and_alignment() {
    #[repr(C)]
    struct ByHandA(u32, u32);
    // SAFETY: two plain integers, repr(C), no destructor.
    unsafe impl ShmSafe for ByHandA {}
    #[repr(C)]
    struct ByHandB(i32, f32);
    // SAFETY: two plain numbers, repr(C), no destructor.
    unsafe impl ShmSafe for ByHandB {}
    #[repr(C)]
    struct ByHandC(u16, u16);
    // SAFETY: two plain integers, repr(C), no destructor.
    unsafe impl ShmSafe for ByHandC {}
    // Same size and alignment: indistinguishable without an explicit FINGERPRINT.
    assert_eq!(ByHandA::FINGERPRINT, ByHandB::FINGERPRINT);
    assert_ne!(ByHandA::FINGERPRINT, ByHandC::FINGERPRINT);
    assert_ne!(ByHandB::FINGERPRINT, <(i32, f32)>::FINGERPRINT);
}

#[test]
fn bit_patterns_combine_the_fields_and_hand_written_impls_are_unchecked() {
    use shmsync::BitPatterns::{Any, Checked, Unchecked};
    use shmsync::{futex, pthread};
    #[derive(ShmSafe)]
    #[repr(C)]
    struct Plain(u64, [i16; 3], futex::ShmMutex<f32>);
    #[derive(ShmSafe)]
    #[repr(C)]
    struct WithFlag(u64, (u8, bool));
    #[derive(ShmSafe)]
    #[repr(C)]
    struct WithPthread(WithFlag, pthread::ShmMutex<u8>);
    #[repr(C)]
    struct ByHand(u32);
    // SAFETY: one plain integer, repr(C), no destructor.
    unsafe impl ShmSafe for ByHand {}
    assert_eq!(Plain::BIT_PATTERNS, Any);
    assert_eq!(WithFlag::BIT_PATTERNS, Checked);
    assert_eq!(futex::ShmMutex::<WithFlag>::BIT_PATTERNS, Checked);
    assert_eq!(WithPthread::BIT_PATTERNS, Unchecked);
    assert_eq!(pthread::ShmCondvar::BIT_PATTERNS, Unchecked);
    assert_eq!(ByHand::BIT_PATTERNS, Unchecked);

    // Bytes that may stop being a valid WithFlag: never read as one.
    let mut raw = core::mem::MaybeUninit::new(WithFlag(1, (2, true)));
    // SAFETY: `raw` holds an initialised, aligned WithFlag's bytes.
    assert!(unsafe { WithFlag::is_valid_bit_pattern(raw.as_ptr()) });
    let flag = core::mem::offset_of!(WithFlag, 1) + core::mem::offset_of!((u8, bool), 1);
    // SAFETY: the bool's byte lies within `raw`, which is never assumed initialised again.
    unsafe { raw.as_mut_ptr().cast::<u8>().add(flag).write(3) };
    // SAFETY: as above: initialised bytes, aligned.
    assert!(!unsafe { WithFlag::is_valid_bit_pattern(raw.as_ptr()) });
}

fn assert_all_differ(all: &[(&str, u64)]) {
    for (i, (a, fa)) in all.iter().enumerate() {
        for (b, fb) in &all[i + 1..] {
            assert_ne!(fa, fb, "{a} and {b} share a fingerprint");
        }
    }
}
