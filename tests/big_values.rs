//! Big values made in place, in the debug profile: a 256 MiB frame and a million mutexes
//! through every `_zeroed` and `_with` entry point (anonymous, POSIX, System V, memfd,
//! placed), each used across a fork (the child locks and writes, the parent sees it), with
//! no stack overflow and no page of the value touched at creation (checked with `mincore`,
//! which counts the resident pages of a mapping).

mod common;
mod region_util;

use std::io::ErrorKind;
use std::os::fd::FromRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;
use std::time::Duration;

use common::backends::{Backend, Futex, Pthread};
use region_util::{ftok_key, RmKey, Rmid, Unlink};
use shmsync::generic::{self, RawMutex};
use shmsync::{ShmBox, ShmMutex, ShmRef, ShmSafe, ShmZeroable, SysvKey};

/// Bytes in the big frame.
const BIG: usize = 256 << 20;
/// Mutexes in the big table.
const LOCKS: usize = 1_000_000;
/// How long a parent waits for a lock that a dead child held.
const LOCK_DEADLINE: Duration = Duration::from_secs(20);

#[derive(ShmSafe, ShmZeroable)]
#[repr(C)]
struct Frame {
    seq: u64,
    bytes: [u8; BIG],
}

/// A 256 MiB value behind one mutex.
type BigFrame = ShmMutex<Frame>;
/// A million mutexes of one backend.
type Table<R> = [generic::ShmMutex<u64, R>; LOCKS];

/// A big value the test bodies share across a fork.
trait Shared: ShmZeroable {
    /// What the `_with` entry points' init does.
    fn mark(&mut self);
    /// Whether `mark` ran, and everything else is still zero.
    fn has_mark(&self) -> bool;
    /// Whether the value is still all zero where the tests look.
    fn is_zero(&self) -> bool;
    /// What the child does with the value; its exit code is 0 when all went as expected.
    fn child_writes(&self) -> i32;
    /// Whether the parent sees what the child did.
    fn sees_child(&self) -> bool;
}

impl Shared for BigFrame {
    fn mark(&mut self) {
        let frame = self.get_mut().expect("fresh");
        frame.seq = 7;
        frame.bytes[BIG - 1] = 7;
    }

    fn has_mark(&self) -> bool {
        let frame = self.lock().expect("not poisoned");
        frame.seq == 7 && frame.bytes[BIG - 1] == 7 && frame.bytes[BIG / 2] == 0
    }

    fn is_zero(&self) -> bool {
        let frame = self.lock().expect("not poisoned");
        frame.seq == 0 && [0, BIG / 2, BIG - 1].iter().all(|&i| frame.bytes[i] == 0)
    }

    fn child_writes(&self) -> i32 {
        let Ok(mut frame) = self.lock() else {
            return 1;
        };
        frame.seq += 100;
        frame.bytes[0] = 1;
        frame.bytes[BIG / 2] = 2;
        frame.bytes[BIG - 1] = 3;
        0
    }

    fn sees_child(&self) -> bool {
        let frame = self.lock().expect("not poisoned");
        frame.seq >= 100 && frame.bytes[..1] == [1] && frame.bytes[BIG / 2] == 2
    }
}

impl<R: RawMutex> Shared for Table<R>
where
    generic::ShmMutex<u64, R>: ShmZeroable,
{
    /// Locks a mutex inside init: a pthread mutex is set up there, robust only if the memory
    /// is already known to shmsync as a place for robust mutexes (`sees_child` checks).
    fn mark(&mut self) {
        *self[1].lock().expect("fresh") = 5;
        *self[LOCKS - 1].get_mut().expect("fresh") = 7;
    }

    fn has_mark(&self) -> bool {
        *self[LOCKS - 1].lock().expect("not poisoned") == 7
            && *self[1].lock().expect("not poisoned") == 5
            && *self[LOCKS / 2].lock().expect("not poisoned") == 0
    }

    fn is_zero(&self) -> bool {
        [0, 1, LOCKS / 2, LOCKS - 1]
            .iter()
            .all(|&i| *self[i].lock().expect("not poisoned") == 0)
    }

    /// Writes three mutexes' values and dies holding a fourth.
    fn child_writes(&self) -> i32 {
        for (i, v) in [(0, 1), (LOCKS / 2, 2), (LOCKS - 1, 3)] {
            match self[i].lock() {
                Ok(mut g) => *g += v,
                Err(_) => return 1,
            }
        }
        match self[1].lock() {
            Ok(mut g) => *g += 10,
            Err(_) => return 2,
        }
        let held = self[1].lock();
        std::mem::forget(held);
        0
    }

    fn sees_child(&self) -> bool {
        let died_holding = match self[1].try_lock_for(LOCK_DEADLINE) {
            Err(TryLockError::Poisoned(p)) => *p.into_inner() >= 10,
            _ => false,
        };
        self[1].clear_poison();
        died_holding
            && *self[0].lock().unwrap() == 1
            && *self[LOCKS / 2].lock().unwrap() == 2
            && *self[LOCKS - 1].lock().unwrap() >= 3
    }
}

/// How many of the pages under `value` are resident (`mincore`).
fn resident_pages<T>(value: &T) -> usize {
    let page = 4096;
    let start = value as *const T as usize;
    let first = start / page * page;
    let len = start + std::mem::size_of::<T>() - first;
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: the range lies inside the value's mapping (page-rounded down to its first page,
    // which is mapped too); `vec` has one byte per page.
    let rc = unsafe { libc::mincore(first as *mut libc::c_void, len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

/// The checks every entry point's value goes through: zero (or marked) as made, with at most
/// a few pages touched (unless `placed`, which zeroes its memory), then shared with a child
/// that locks and writes it.
fn shared_across_fork<T: Shared>(value: &T, marked: bool, placed: bool, what: &str) {
    let resident = resident_pages(value);
    if !placed {
        assert!(
            resident <= 3,
            "{what}: {resident} pages touched at creation"
        );
    }
    if marked {
        assert!(value.has_mark(), "{what}: init's writes are missing");
    } else {
        assert!(value.is_zero(), "{what}: not zero");
    }
    // Fork: the child locks and writes the shared value through its inherited mapping.
    common::fork(|| value.child_writes()).join();
    assert!(
        value.sees_child(),
        "{what}: the child's writes are not seen"
    );
    if !placed {
        assert!(
            resident_pages(value) > resident,
            "{what}: the child's writes made no page resident (mincore sees nothing)"
        );
    }
}

fn anonymous<T: Shared>() {
    let zeroed = ShmBox::<T>::new_zeroed().unwrap();
    shared_across_fork(&*zeroed, false, false, "new_zeroed");
    let with = ShmBox::<T>::new_with(T::mark).unwrap();
    shared_across_fork(&*with, true, false, "new_with");
}

fn posix<T: Shared>() {
    let name = Unlink::new("big-create");
    let zeroed = ShmBox::<T>::create_zeroed(name.name()).unwrap();
    shared_across_fork(&*zeroed, false, false, "create_zeroed");
    let name = Unlink::new("big-create-with");
    let with = ShmBox::<T>::create_with(name.name(), T::mark).unwrap();
    shared_across_fork(&*with, true, false, "create_with");

    let name = Unlink::new("big-ooc");
    let created = ShmBox::<T>::open_or_create_zeroed(name.name()).unwrap();
    let opened = ShmBox::<T>::open_or_create_zeroed(name.name()).unwrap();
    drop(created);
    shared_across_fork(&*opened, false, false, "open_or_create_zeroed");
    let name = Unlink::new("big-ooc-with");
    let created = ShmBox::<T>::open_or_create_with(name.name(), T::mark).unwrap();
    let opened = ShmBox::<T>::open_or_create_with(name.name(), |_| panic!("a second init"));
    drop(created);
    shared_across_fork(&*opened.unwrap(), true, false, "open_or_create_with");
}

fn sysv<T: Shared>() {
    let zeroed = ShmBox::<T>::sysv_create_zeroed(SysvKey::Private).unwrap();
    let _rm = Rmid(zeroed.sysv_id().unwrap());
    shared_across_fork(&*zeroed, false, false, "sysv_create_zeroed");
    let with = ShmBox::<T>::sysv_create_with(SysvKey::Private, T::mark).unwrap();
    let _rm = Rmid(with.sysv_id().unwrap());
    shared_across_fork(&*with, true, false, "sysv_create_with");

    let (_file, key) = ftok_key("big-sysv", 1);
    let _rm = RmKey(key);
    let created = ShmBox::<T>::sysv_open_or_create_zeroed(SysvKey::Key(key)).unwrap();
    let opened = ShmBox::<T>::sysv_open_or_create_zeroed(SysvKey::Key(key)).unwrap();
    drop(created);
    shared_across_fork(&*opened, false, false, "sysv_open_or_create_zeroed");
    let (_file, key) = ftok_key("big-sysv-with", 2);
    let _rm = RmKey(key);
    let created = ShmBox::<T>::sysv_open_or_create_with(SysvKey::Key(key), T::mark).unwrap();
    let again = ShmBox::<T>::sysv_open_or_create_with(SysvKey::Key(key), |_| panic!("again"));
    drop(created);
    shared_across_fork(&*again.unwrap(), true, false, "sysv_open_or_create_with");
}

/// The memfd entry points; each value is also opened again from its descriptor, as a
/// process that received it would.
fn memfd<T: Shared>() {
    let zeroed = ShmBox::<T>::memfd_create_zeroed("big-zeroed").unwrap();
    shared_across_fork(&*zeroed, false, false, "memfd_create_zeroed");
    let with = ShmBox::<T>::memfd_create_with("big-with", T::mark).unwrap();
    let fd = with.memfd().unwrap().try_clone_to_owned().unwrap();
    drop(with);
    let reopened = ShmBox::<T>::from_fd(fd).unwrap();
    shared_across_fork(&*reopened, true, false, "memfd_create_with, then from_fd");
}

/// A shared file mapping (a memfd) of `len` bytes, first filled with garbage so that the
/// placements must zero it.
fn shared_map(len: usize) -> memmap2::MmapMut {
    // SAFETY: the name is NUL-terminated; memfd_create returns a fresh descriptor.
    let fd = unsafe { libc::memfd_create(c"shmsync-big".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.set_len(len as u64).unwrap();
    // SAFETY: this test alone uses the memfd, through this mapping.
    let mut map = unsafe { memmap2::MmapOptions::new().map_mut(&file) }.unwrap();
    map[ShmRef::<u8>::size_for()..]
        .iter_mut()
        .step_by(4096)
        .for_each(|b| *b = 0xa5);
    map
}

/// The unsafe placements (the safe ones do not take pthread-backend mutexes; they are the
/// same code and are checked below).
fn placed<T: Shared>() {
    let len = ShmRef::<T>::size_for();
    let mut map = shared_map(len);
    // SAFETY: the mapping outlives the placement, which is dropped first, and is used only
    // through it.
    let zeroed = unsafe { ShmRef::<T>::init_zeroed(map.as_mut_ptr(), len) }.unwrap();
    shared_across_fork(&*zeroed, false, true, "init_zeroed");
    drop(zeroed);
    let mut map = shared_map(len);
    // SAFETY: as above.
    let with = unsafe { ShmRef::<T>::init_with(map.as_mut_ptr(), len, T::mark) }.unwrap();
    shared_across_fork(&*with, true, true, "init_with");
}

/// Every entry point, each value shared across a fork.
fn every_entry_point<T: Shared>() {
    anonymous::<T>();
    posix::<T>();
    sysv::<T>();
    memfd::<T>();
    placed::<T>();
}

#[test]
fn a_256_mib_frame_through_every_entry_point_is_shared_across_fork() {
    every_entry_point::<BigFrame>();
}

#[test]
fn a_million_futex_mutexes_through_every_entry_point_are_shared_across_fork() {
    every_entry_point::<Table<<Futex as Backend>::R>>();
}

#[test]
fn a_million_pthread_mutexes_made_in_place_are_robust() {
    every_entry_point::<Table<<Pthread as Backend>::R>>();
}

#[test]
fn the_safe_placements_zero_what_the_memory_held() {
    let mut map = shared_map(ShmRef::<[u64; 1 << 16]>::size_for());
    let placed = ShmRef::<[u64; 1 << 16]>::init_zeroed_in(&mut map, 0).unwrap();
    assert!(placed.iter().all(|&v| v == 0));
    drop(placed);
    let placed = ShmRef::<[u64; 1 << 16]>::init_with_in(&mut map, 0, |v| v[5] = 5).unwrap();
    assert_eq!(placed.iter().sum::<u64>(), 5);
    drop(placed);
    assert_eq!(
        ShmRef::<[u64; 1 << 16]>::attach_in(&mut map, 0).unwrap()[5],
        5
    );
}

/// 4 MiB of counters: `[0]` counts the inits that ran.
type Counters = [AtomicU32; 1 << 20];

#[test]
fn racing_open_or_create_with_runs_init_once() {
    let name = Unlink::new("big-race");
    let (_file, key) = ftok_key("big-race", 3);
    let _rm = RmKey(key);
    let count_init = |v: &mut Counters| *v[0].get_mut() += 1;
    // Fork: four children race to create the same POSIX and System V segments.
    let children: Vec<_> = (0..4)
        .map(|_| {
            common::fork(|| {
                let posix = ShmBox::open_or_create_with(name.name(), count_init).unwrap();
                let sysv = ShmBox::sysv_open_or_create_with(SysvKey::Key(key), count_init);
                let sysv = sysv.unwrap();
                posix[1].fetch_add(1, Ordering::Relaxed);
                sysv[1].fetch_add(1, Ordering::Relaxed);
                0
            })
        })
        .collect();
    children.into_iter().for_each(common::Child::join);
    let posix = ShmBox::<Counters>::open(name.name()).unwrap();
    let sysv = ShmBox::<Counters>::sysv_open(SysvKey::Key(key)).unwrap();
    for (what, v) in [("posix", &posix), ("sysv", &sysv)] {
        assert_eq!(v[0].load(Ordering::Relaxed), 1, "{what}: inits");
        assert_eq!(v[1].load(Ordering::Relaxed), 4, "{what}: users");
    }
}

#[test]
fn a_panicking_init_leaves_no_segment_behind() {
    let boom = |_: &mut Counters| panic!("init fails");
    let name = Unlink::new("big-panic");
    let caught = catch_unwind(AssertUnwindSafe(|| ShmBox::create_with(name.name(), boom)));
    assert!(caught.is_err());
    let err = ShmBox::<Counters>::open(name.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        ShmBox::open_or_create_with(name.name(), boom)
    }));
    assert!(caught.is_err());
    assert_eq!(
        ShmBox::<Counters>::open(name.name()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let retried = ShmBox::<Counters>::open_or_create_with(name.name(), |v| *v[0].get_mut() = 9);
    assert_eq!(retried.unwrap()[0].load(Ordering::Relaxed), 9);

    let (_file, key) = ftok_key("big-panic", 4);
    let _rm = RmKey(key);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        ShmBox::sysv_open_or_create_with(SysvKey::Key(key), boom)
    }));
    assert!(caught.is_err());
    let err = ShmBox::<Counters>::sysv_open(SysvKey::Key(key)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(catch_unwind(|| ShmBox::new_with(boom)).is_err());
}

#[test]
fn the_primitives_new_state_is_all_zero_bytes() {
    /// The bytes of a padding-free value.
    fn bytes<T>(value: &T) -> &[u8] {
        // SAFETY: reads the value's own bytes; the types below have no padding.
        unsafe { std::slice::from_raw_parts((value as *const T).cast(), size_of::<T>()) }
    }
    use std::mem::size_of;
    assert!(bytes(&shmsync::futex::ShmMutex::new(0u32))
        .iter()
        .all(|&b| b == 0));
    assert!(bytes(&shmsync::futex::ShmCondvar::new())
        .iter()
        .all(|&b| b == 0));
    assert!(bytes(&shmsync::pthread::ShmCondvar::new())
        .iter()
        .all(|&b| b == 0));
    // The pthread mutex's first word says "not initialised yet" (its C bytes mean nothing
    // until the first lock initialises them in place); glibc's C initialiser is zero too.
    let pthread = shmsync::pthread::ShmMutex::new(0u32);
    assert_eq!(bytes(&pthread)[..4], [0; 4]);
    assert!(bytes(&libc::PTHREAD_MUTEX_INITIALIZER)
        .iter()
        .all(|&b| b == 0));
}
