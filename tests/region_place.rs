//! Placement with `ShmRef` into memory the application maps itself: a file mapped by a parent
//! and a forked child, or mapped twice in one process; bounds, alignment and type checks.

mod common;
mod region_util;

use std::fs::File;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

use memmap2::MmapMut;
use shmsync::ShmRef;

/// A temporary file of `len` zero bytes, removed on drop.
fn sized_file(tag: &str, len: u64) -> (region_util::RemoveFile, File) {
    let guard = region_util::temp_file(tag);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&guard.0)
        .unwrap();
    file.set_len(len).unwrap();
    (guard, file)
}

/// A shared, writable mapping of the whole of `file`.
fn map(file: &File) -> MmapMut {
    // SAFETY: the test's temporary files are only resized before they are mapped, and every
    // process touches the shared values through atomics.
    unsafe { MmapMut::map_mut(file) }.unwrap()
}

#[test]
fn value_placed_in_a_file_mapping_is_shared_with_a_forked_child() {
    let (path, file) = sized_file("place-fork", 8192);
    let mut parent_map = map(&file);
    let placed = ShmRef::init_in(&mut parent_map, 128, AtomicU64::new(5)).unwrap();
    let path = &path.0;
    // Fork: the child maps the file afresh, attaches, checks and updates the value.
    let child = common::fork(|| {
        let file = File::options().read(true).write(true).open(path).unwrap();
        let mut own = map(&file);
        if ShmRef::<AtomicU32>::attach_in(&mut own, 128)
            .map(drop)
            .map_err(|e| e.kind())
            != Err(ErrorKind::InvalidData)
        {
            return 1;
        }
        let Ok(attached) = ShmRef::<AtomicU64>::attach_in(&mut own, 128) else {
            return 2;
        };
        if attached.load(SeqCst) != 5 {
            return 3;
        }
        attached.store(6, SeqCst);
        0
    });
    child.join();
    assert_eq!(placed.load(SeqCst), 6);
}

#[test]
fn two_mappings_of_one_file_share_the_placed_value() {
    let (_path, file) = sized_file("place-twice", 4096);
    let mut first = map(&file);
    let mut second = map(&file);
    assert_ne!(first.as_ptr(), second.as_ptr());
    let placed = ShmRef::init_in(&mut first, 0, [AtomicU32::new(1), AtomicU32::new(2)]).unwrap();
    let attached = ShmRef::<[AtomicU32; 2]>::attach_in(&mut second, 0).unwrap();
    assert_ne!(
        (&*placed as *const [AtomicU32; 2]),
        (&*attached as *const [AtomicU32; 2])
    );
    assert_eq!(attached[1].load(SeqCst), 2);
    attached[0].store(10, SeqCst);
    assert_eq!(placed[0].load(SeqCst), 10);
}

#[test]
fn misaligned_too_small_and_out_of_range_regions_are_invalid_input() {
    let mut map = MmapMut::map_anon(4096).unwrap();
    let need = ShmRef::<AtomicU64>::size_for();
    assert_eq!(need, 136);
    let cases = [
        (4, "misaligned"),
        (12, "misaligned"),
        (4096 - need + 8, "too small"),
        (4096, "too small"),
        (4097, "beyond"),
        (usize::MAX, "beyond"),
    ];
    for (offset, what) in cases {
        let err = ShmRef::init_in(&mut map, offset, AtomicU64::new(1))
            .map(drop)
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "{what} {offset}: {err}"
        );
        let err = ShmRef::<AtomicU64>::attach_in(&mut map, offset)
            .map(drop)
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "{what} {offset}: {err}"
        );
    }
    assert!(map.iter().all(|&b| b == 0), "a refused placement wrote");
    // The last place that fits works.
    let at = 4096 - need;
    assert!(ShmRef::init_in(&mut map, at, AtomicU64::new(1)).is_ok());

    // A value aligned to 16 needs a 16-aligned region.
    #[derive(shmsync::ShmSafe)]
    #[repr(C, align(16))]
    struct Wide {
        a: u64,
    }
    let mut map = MmapMut::map_anon(4096).unwrap();
    let err = ShmRef::init_in(&mut map, 8, Wide { a: 1 })
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let placed = ShmRef::init_in(&mut map, 16, Wide { a: 2 }).unwrap();
    assert_eq!(placed.a, 2);
    assert_eq!((&*placed as *const Wide as usize) % 16, 0);
}

#[test]
fn wrong_type_garbage_and_blank_regions_are_invalid_data() {
    let mut map = MmapMut::map_anon(4096).unwrap();
    ShmRef::init_in(&mut map, 64, 7u64).unwrap();
    let before = map.to_vec();
    for err in [
        ShmRef::<i64>::attach_in(&mut map, 64)
            .map(drop)
            .unwrap_err(),
        ShmRef::<[u32; 2]>::attach_in(&mut map, 64)
            .map(drop)
            .unwrap_err(),
        ShmRef::<shmsync::ShmMutex<u64>>::attach_in(&mut map, 64)
            .map(drop)
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    }
    assert_eq!(map.to_vec(), before, "a refused attach wrote");
    assert_eq!(*ShmRef::<u64>::attach_in(&mut map, 64).unwrap(), 7);

    // A blank region was never initialised; a shifted one is garbage.
    let err = ShmRef::<u64>::attach_in(&mut map, 1024)
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    let err = ShmRef::<u64>::attach_in(&mut map, 136)
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    let mut rng = common::Rng::new(3);
    map[2048..].iter_mut().for_each(|b| *b = rng.byte());
    let err = ShmRef::<u64>::attach_in(&mut map, 2048)
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
}

#[test]
fn raw_pointer_placement_round_trips() {
    // Memory "from C": a buffer this test owns, 8-aligned.
    let mut buf = vec![0u64; 64];
    let (ptr, len) = (buf.as_mut_ptr().cast::<u8>(), buf.len() * 8);
    // SAFETY: `buf` outlives both references and is used only through them.
    let placed = unsafe { ShmRef::init(ptr, len, AtomicU32::new(40)) }.unwrap();
    // SAFETY: as above.
    let attached = unsafe { ShmRef::<AtomicU32>::attach(ptr, len) }.unwrap();
    attached.fetch_add(2, SeqCst);
    assert_eq!(placed.load(SeqCst), 42);
    // SAFETY: as above; a misaligned pointer is refused before it is touched.
    let err = unsafe { ShmRef::<AtomicU32>::attach(ptr.add(4), len - 4) }
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // SAFETY: as above; too short a region is refused before it is touched.
    let err = unsafe { ShmRef::<AtomicU32>::attach(ptr, 60) }
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// The offset of `value` from `base`, the address where its mapping starts.
fn offset_from<T>(base: usize, value: &T) -> usize {
    value as *const T as usize - base
}

/// Regression: `attach_in` trusted the value's bytes, which safe code can write through the
/// `MmapMut`; a `bool` holding 2 then compared equal to both `true` and `false`.
#[test]
fn forged_bool_and_char_are_refused_and_valid_ones_accepted() {
    let mut map = MmapMut::map_anon(4096).unwrap();
    let base = map.as_ptr() as usize;
    let placed = ShmRef::init_in(&mut map, 0, true).unwrap();
    let at = offset_from(base, &*placed);
    map[at] = 2;
    let err = ShmRef::<bool>::attach_in(&mut map, 0)
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    map[at] = 0;
    assert!(!*ShmRef::<bool>::attach_in(&mut map, 0).unwrap());

    let placed = ShmRef::init_in(&mut map, 1024, 'x').unwrap();
    let at = offset_from(base, &*placed);
    for forged in [0xd800u32, 0xdfff, 0x11_0000, u32::MAX] {
        map[at..at + 4].copy_from_slice(&forged.to_ne_bytes());
        let err = ShmRef::<char>::attach_in(&mut map, 1024)
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{forged:#x}: {err}");
    }
    map[at..at + 4].copy_from_slice(&u32::from('é').to_ne_bytes());
    assert_eq!(*ShmRef::<char>::attach_in(&mut map, 1024).unwrap(), 'é');
}

/// Fields of derived structs, array elements, tuple fields and the value inside a mutex are
/// checked too.
#[test]
fn forged_fields_inside_aggregates_and_mutexes_are_refused() {
    #[derive(shmsync::ShmSafe)]
    #[repr(C)]
    struct Flags {
        count: u32,
        ready: bool,
        tags: [(u8, char); 2],
    }
    type Placed = shmsync::ShmMutex<Flags>;
    let value = || Flags {
        count: 1,
        ready: true,
        tags: [(1, 'a'), (2, 'b')],
    };
    let mut map = MmapMut::map_anon(4096).unwrap();
    let base = map.as_ptr() as usize;
    let placed = ShmRef::init_in(&mut map, 0, shmsync::ShmMutex::new(value())).unwrap();
    let flags = offset_from(base, &*placed.lock().unwrap());
    let ready = flags + std::mem::offset_of!(Flags, ready);
    let last_char = flags
        + std::mem::offset_of!(Flags, tags)
        + std::mem::size_of::<(u8, char)>()
        + std::mem::offset_of!((u8, char), 1);
    let clean = map.to_vec();
    for (at, forged) in [(ready, 0xffu32), (last_char, 0xd800)] {
        map.copy_from_slice(&clean);
        let width = if at == ready { 1 } else { 4 };
        map[at..at + width].copy_from_slice(&forged.to_ne_bytes()[..width]);
        let err = ShmRef::<Placed>::attach_in(&mut map, 0)
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "forged at {at}: {err}");
    }
    map.copy_from_slice(&clean);
    let attached = ShmRef::<Placed>::attach_in(&mut map, 0).unwrap();
    assert_eq!(attached.lock().unwrap().tags[1].1, 'b');
}
