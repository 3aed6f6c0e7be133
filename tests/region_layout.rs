//! Opening a named segment as the wrong type, backend or format version is `InvalidData` with
//! a message that says which; the same structure under other names opens fine.

mod common;
mod region_util;

use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use region_util::Unlink;
use shmsync::{ShmBox, ShmMutex, ShmSafe};

/// Opens `name` as a `U` and asserts `InvalidData` whose message contains `needle`, and that
/// the failed open left the segment's bytes alone.
fn assert_refused_as<U: ShmSafe>(name: &str, needle: &str) -> io::Error {
    let before = region_util::read_segment(name);
    let err = match ShmBox::<U>::open(name) {
        Ok(_) => panic!("{name} opened as {}", std::any::type_name::<U>()),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains(needle), "{needle:?} not in: {err}");
    let ran = std::cell::Cell::new(false);
    let err2 = ShmBox::<U>::open_or_create(name, || {
        ran.set(true);
        panic!("init must not run over an existing segment")
    })
    .map(drop)
    .unwrap_err();
    assert!(!ran.get());
    assert_eq!(err2.kind(), ErrorKind::InvalidData, "{err2}");
    assert_eq!(
        region_util::read_segment(name),
        before,
        "a failed open wrote"
    );
    err
}

#[test]
fn plain_values_of_another_kind_or_length_are_refused_by_fingerprint() {
    let seg = Unlink::new("u64");
    let created = ShmBox::create(seg.name(), 5u64).unwrap();
    assert_refused_as::<i64>(seg.name(), "was asked for");
    assert_refused_as::<[u32; 2]>(seg.name(), "was asked for");
    assert_refused_as::<f64>(seg.name(), "was asked for");
    assert_refused_as::<AtomicU64>(seg.name(), "was asked for");
    assert_refused_as::<(u32, u32)>(seg.name(), "was asked for");
    assert_refused_as::<u32>(seg.name(), "was asked for");
    assert_eq!(*ShmBox::<u64>::open(seg.name()).unwrap(), 5);
    drop(created);

    let seg = Unlink::new("arr");
    let _created = ShmBox::create(seg.name(), [1u32, 2]).unwrap();
    assert_refused_as::<u64>(seg.name(), "was asked for");
    assert_refused_as::<[i32; 2]>(seg.name(), "was asked for");
    assert_refused_as::<[u16; 4]>(seg.name(), "was asked for");
    assert_eq!(*ShmBox::<[u32; 2]>::open(seg.name()).unwrap(), [1, 2]);
}

#[test]
fn mutexes_of_another_value_type_are_refused_by_fingerprint() {
    let seg = Unlink::new("mutex");
    let _created = ShmBox::create(seg.name(), ShmMutex::new(0u64)).unwrap();
    assert_refused_as::<ShmMutex<i64>>(seg.name(), "was asked for");
    assert_refused_as::<ShmMutex<[u32; 2]>>(seg.name(), "was asked for");
    assert_refused_as::<ShmMutex<AtomicU64>>(seg.name(), "was asked for");
    // Without a mutex at all, the backend set already differs.
    assert_refused_as::<u64>(seg.name(), "backend");
    assert!(ShmBox::<ShmMutex<u64>>::open(seg.name()).is_ok());
}

#[test]
fn primitives_of_the_other_backend_are_refused_naming_the_backend() {
    let seg = Unlink::new("futex");
    let _created = ShmBox::create(seg.name(), shmsync::futex::ShmMutex::new(0u64)).unwrap();
    let err = assert_refused_as::<shmsync::pthread::ShmMutex<u64>>(seg.name(), "backend");
    let msg = err.to_string();
    assert!(msg.contains("futex") && msg.contains("pthread"), "{msg}");

    let seg = Unlink::new("pthread");
    let _created = ShmBox::create(seg.name(), shmsync::pthread::ShmCondvar::new()).unwrap();
    let err = assert_refused_as::<shmsync::futex::ShmCondvar>(seg.name(), "backend");
    let msg = err.to_string();
    assert!(msg.contains("futex") && msg.contains("pthread"), "{msg}");

    #[derive(ShmSafe)]
    #[repr(C)]
    struct WithFutex {
        m: shmsync::futex::ShmMutex<u32>,
        n: u32,
    }
    #[derive(ShmSafe)]
    #[repr(C)]
    struct WithPthread {
        m: shmsync::pthread::ShmMutex<u32>,
        n: u32,
    }
    let seg = Unlink::new("field");
    let value = WithFutex {
        m: shmsync::futex::ShmMutex::new(0),
        n: 1,
    };
    let _created = ShmBox::create(seg.name(), value).unwrap();
    assert_refused_as::<WithPthread>(seg.name(), "backend");
}

#[test]
fn other_format_versions_and_header_sizes_are_refused() {
    let template = region_util::valid_segment_bytes(AtomicU64::new(9));
    let at = region_util::VERSION_OFFSET;
    for version in [0u32, 1, 2, 4, u32::MAX] {
        let seg = Unlink::new("version");
        let mut bytes = template.clone();
        bytes[at..at + 4].copy_from_slice(&version.to_ne_bytes());
        region_util::write_raw_segment(seg.name(), &bytes).unwrap();
        let err = assert_refused_as::<AtomicU64>(seg.name(), "version");
        assert!(err.to_string().contains(&version.to_string()), "{err}");
    }
    for header_size in [0u32, 32, 64, 256] {
        let seg = Unlink::new("header-size");
        let mut bytes = template.clone();
        bytes[at + 4..at + 8].copy_from_slice(&header_size.to_ne_bytes());
        region_util::write_raw_segment(seg.name(), &bytes).unwrap();
        assert_refused_as::<AtomicU64>(seg.name(), "header");
    }
    // The unpatched bytes, written the same way, open fine.
    let seg = Unlink::new("version-ok");
    region_util::write_raw_segment(seg.name(), &template).unwrap();
    assert_eq!(
        ShmBox::<AtomicU64>::open(seg.name()).unwrap().load(SeqCst),
        9
    );
}

#[derive(ShmSafe)]
#[repr(C)]
struct Totals {
    count: u32,
    sum: u64,
}

mod elsewhere {
    /// The same structure as `Totals`, declared under other names.
    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    pub struct Tally {
        pub n: u32,
        pub total: u64,
    }

    /// `Totals` with its fields swapped.
    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    pub struct Swapped {
        pub sum: u64,
        pub count: u32,
    }

    /// `Totals` with a signed field.
    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    pub struct Signed {
        pub count: i32,
        pub sum: u64,
    }
}

#[test]
fn same_structure_under_other_names_opens_and_other_structures_do_not() {
    let seg = Unlink::new("struct");
    let _created = ShmBox::create(seg.name(), Totals { count: 3, sum: 30 }).unwrap();
    let same = ShmBox::<elsewhere::Tally>::open(seg.name()).unwrap();
    assert_eq!((same.n, same.total), (3, 30));
    assert_refused_as::<elsewhere::Swapped>(seg.name(), "was asked for");
    assert_refused_as::<elsewhere::Signed>(seg.name(), "was asked for");
    assert_refused_as::<(u32, u64)>(seg.name(), "was asked for");
}

#[test]
fn another_program_declaring_the_same_struct_shares_the_segment() {
    if common::role().as_deref() == Some("tally") {
        let name = std::env::var("SHMSYNC_TEST_SEGMENT").unwrap();
        let opened = ShmBox::<elsewhere::Tally>::open(&name).unwrap();
        assert_eq!((opened.n, opened.total), (4, 40));
        let err = ShmBox::<elsewhere::Swapped>::open(&name)
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        return;
    }
    let seg = Unlink::new("program");
    let _created = ShmBox::create(seg.name(), Totals { count: 4, sum: 40 }).unwrap();
    let child = common::spawn_role(
        "another_program_declaring_the_same_struct_shares_the_segment",
        "tally",
        &[("SHMSYNC_TEST_SEGMENT", seg.name())],
    );
    assert_eq!(common::wait_spawned(child), Some(0));
}
