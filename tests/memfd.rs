//! memfd segments: made with `ShmBox::memfd_create*`, shared with forked children and with
//! unrelated processes that receive the descriptor over a Unix socket (`SCM_RIGHTS`), and
//! opened with `ShmBox::from_fd`, which refuses with the right error kind, and without
//! writing a byte, whatever is not a memfd segment holding the asked-for type.

#[macro_use]
mod common;
mod region_util;
#[path = "../examples/shared/scm_rights.rs"]
mod scm_rights;

use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::TryLockError;
use std::time::Duration;

use common::backends::{Backend, Mutex};
use common::Rng;
use region_util::{Unlink, HEADER_SIZE, INITIALIZING, STATE_OFFSET};
use shmsync::{ShmBox, ShmMutex};

/// Where a spawned receiver finds the socket that the test sends the descriptor on.
const SOCKET_VAR: &str = "SHMSYNC_TEST_MEMFD_SOCKET";
/// Increments by each process in the counting tests.
const ROUNDS: u64 = 10_000;
/// How long a parent waits for a lock that a dead process held.
const LOCK_DEADLINE: Duration = Duration::from_secs(20);

type Counter = ShmMutex<u64>;

/// A dup of `fd`, as a receiver or a child would get it.
fn dup(fd: BorrowedFd<'_>) -> OwnedFd {
    fd.try_clone_to_owned().expect("dup")
}

/// The descriptor of a box made by `memfd_create*`.
fn fd_of<T: shmsync::ShmSafe>(b: &ShmBox<T>) -> OwnedFd {
    dup(b.memfd().expect("a memfd box"))
}

/// Every byte of the file behind `fd`, read with `pread` (nothing is mapped).
fn bytes_of(fd: BorrowedFd<'_>) -> Vec<u8> {
    let file = std::fs::File::from(dup(fd));
    let mut bytes = vec![0; file.metadata().expect("fstat").len() as usize];
    file.read_exact_at(&mut bytes, 0).expect("pread");
    bytes
}

/// A memfd made by hand holding `bytes`, with `seals` added (and `MFD_ALLOW_SEALING`), as
/// a foreign or broken sender would make it.
fn raw_memfd(bytes: &[u8], seals: i32) -> OwnedFd {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: the name is NUL-terminated; memfd_create returns a fresh descriptor.
    let fd = unsafe { libc::memfd_create(c"shmsync-test-raw".as_ptr(), flags) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes).expect("write");
    // SAFETY: F_ADD_SEALS takes an integer and touches no memory.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    assert_eq!(rc, 0, "F_ADD_SEALS: {}", std::io::Error::last_os_error());
    file.into()
}

/// The seals on the file behind `fd`.
fn seals_of(fd: BorrowedFd<'_>) -> i32 {
    // SAFETY: F_GET_SEALS takes no argument and touches no memory.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    assert!(
        seals >= 0,
        "F_GET_SEALS: {}",
        std::io::Error::last_os_error()
    );
    seals
}

/// What `/proc/self/fd/<fd>` points to.
fn link_of(fd: BorrowedFd<'_>) -> String {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    link.expect("readlink").to_string_lossy().into_owned()
}

/// Opens `fd` as a `T`, expecting an error of `kind`, and checks that the bytes behind it
/// are the same afterwards.
fn refused<T: shmsync::ShmSafe>(fd: OwnedFd, kind: ErrorKind, what: &str) -> String {
    let keep = dup(fd.as_fd());
    let before = bytes_of(keep.as_fd());
    let err = match ShmBox::<T>::from_fd(fd) {
        Ok(_) => panic!("{what}: opened"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), kind, "{what}: {err}");
    eprintln!("MSG {what}: {err}");
    assert_eq!(bytes_of(keep.as_fd()), before, "{what}: the bytes changed");
    err.to_string()
}

/// Passes `fd` to a new process running the test `test` as `role`: binds a socket, spawns
/// the receiver, and sends the descriptor once it connects.
fn pass_to_spawned(test: &str, role: &str, fd: BorrowedFd<'_>) -> std::process::Child {
    let socket = region_util::temp_file("memfd-socket");
    let listener = UnixListener::bind(&socket.0).expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let path = socket.0.to_str().expect("a UTF-8 temp path");
    let child = common::spawn_role(test, role, &[(SOCKET_VAR, path)]);
    let mut stream = None;
    let connected = common::wait_until(common::CHILD_DEADLINE, || {
        stream = listener.accept().ok().map(|(s, _)| s);
        stream.is_some()
    });
    assert!(connected, "the spawned receiver did not connect");
    let stream = stream.expect("connected");
    stream.set_nonblocking(false).expect("blocking");
    scm_rights::send_fd(&stream, fd).expect("sendmsg");
    child
}

/// In a spawned receiver: the segment whose descriptor arrives on the test's socket.
fn receive<T: shmsync::ShmSafe>() -> ShmBox<T> {
    let socket = std::env::var(SOCKET_VAR).expect("the socket in the environment");
    let stream = UnixStream::connect(socket).expect("connect");
    let fd = scm_rights::recv_fd(&stream).expect("recvmsg");
    assert!(link_of(fd.as_fd()).starts_with("/memfd:shmsync:passed"));
    ShmBox::from_fd(fd).expect("from_fd")
}

/// Adds 1 `ROUNDS` times under the mutex.
fn count(counter: &Counter) {
    for _ in 0..ROUNDS {
        *counter.lock().expect("not poisoned") += 1;
    }
}

#[test]
fn a_memfd_segment_is_shared_with_forked_children_and_reopened_from_its_descriptor() {
    let counter = ShmBox::memfd_create("forked", Counter::new(0)).unwrap();
    let fd = counter.memfd().unwrap();
    // Fork: one child counts through the inherited box, one through a box it opens from a
    // descriptor of the same memfd.
    let inherited = common::fork(|| {
        count(&counter);
        0
    });
    let reopened = common::fork(|| match ShmBox::<Counter>::from_fd(dup(fd)) {
        Ok(mine) => {
            count(&mine);
            0
        }
        Err(_) => 1,
    });
    count(&counter);
    inherited.join();
    reopened.join();
    assert_eq!(*counter.lock().unwrap(), 3 * ROUNDS);
}

#[test]
fn a_memfd_segment_passed_over_a_socket_is_used_by_an_unrelated_process() {
    const TEST: &str = "a_memfd_segment_passed_over_a_socket_is_used_by_an_unrelated_process";
    if common::role().as_deref() == Some("memfd-counter") {
        let counter = receive::<Counter>();
        count(&counter);
        return;
    }
    let counter = ShmBox::memfd_create("passed", Counter::new(0)).unwrap();
    let child = pass_to_spawned(TEST, "memfd-counter", counter.memfd().unwrap());
    count(&counter);
    assert_eq!(common::wait_spawned(child), Some(0));
    assert_eq!(*counter.lock().unwrap(), 2 * ROUNDS);
}

/// The value of the owner-death test: a mutex and a flag that says it is held.
type Held<B> = (Mutex<B, u64>, AtomicU32);

/// An unrelated process receives the segment, locks the mutex and is SIGKILLed holding it:
/// the mutex is poisoned for the test process, with the dead holder's write in it.
fn a_holder_killed_in_an_unrelated_process_poisons_the_mutex<B: Backend>() {
    let backend = if std::any::type_name::<B>().ends_with("Futex") {
        "futex"
    } else {
        "pthread"
    };
    let test = format!("{backend}::a_holder_killed_in_an_unrelated_process_poisons_the_mutex");
    if common::role().as_deref() == Some("memfd-holder") {
        let held = receive::<Held<B>>();
        let mut guard = held.0.lock().expect("not poisoned");
        *guard = 1;
        held.1.store(1, Ordering::Release);
        // Hold the lock until the test kills this process; exit with a failure otherwise.
        std::thread::sleep(common::CHILD_DEADLINE);
        std::process::exit(3);
    }
    let held =
        ShmBox::<Held<B>>::memfd_create("passed", (Mutex::<B, _>::new(0), AtomicU32::new(0)));
    let held = held.unwrap();
    let mut child = pass_to_spawned(&test, "memfd-holder", held.memfd().unwrap());
    let holding = common::wait_until(common::CHILD_DEADLINE, || {
        held.1.load(Ordering::Acquire) == 1
    });
    assert!(holding, "the spawned holder never took the lock");
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    match held.0.try_lock_for(LOCK_DEADLINE) {
        Err(TryLockError::Poisoned(p)) => assert_eq!(*p.into_inner(), 1),
        Err(TryLockError::WouldBlock) => panic!("still held after its owner was killed"),
        Ok(_) => panic!("not poisoned after its owner was killed"),
    }
    held.0.clear_poison();
    *held.0.try_lock().expect("usable again") += 1;
}

backend_tests!(a_holder_killed_in_an_unrelated_process_poisons_the_mutex);

#[test]
fn every_segment_is_sealed_at_its_size_and_named_for_inspectors() {
    let b = ShmBox::<[u8; 10_000]>::memfd_create_zeroed("sealed").unwrap();
    let fd = b.memfd().unwrap();
    let seals = seals_of(fd);
    for (seal, name) in [
        (libc::F_SEAL_SHRINK, "F_SEAL_SHRINK"),
        (libc::F_SEAL_GROW, "F_SEAL_GROW"),
        (libc::F_SEAL_SEAL, "F_SEAL_SEAL"),
    ] {
        assert_ne!(seals & seal, 0, "{name} missing from 0x{seals:x}");
    }
    let file = std::fs::File::from(dup(fd));
    let size = file.metadata().unwrap().len();
    for len in [0, size - 1, size + 1] {
        let err = file.set_len(len).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "ftruncate to {len}");
    }
    assert_eq!(file.metadata().unwrap().len(), size);
    assert!(
        link_of(fd).starts_with("/memfd:shmsync:sealed"),
        "{}",
        link_of(fd)
    );
    let unlabelled = ShmBox::memfd_create("", 0u8).unwrap();
    assert!(link_of(unlabelled.memfd().unwrap()).starts_with("/memfd:shmsync "));
    assert!(ShmBox::new(0u8).unwrap().memfd().is_none());
}

#[test]
fn a_label_with_a_nul_or_too_long_is_invalid_input() {
    let longest = "l".repeat(241);
    assert!(ShmBox::memfd_create(&longest, 0u8).is_ok());
    for label in ["nul\0byte", &"l".repeat(242)] {
        let err = ShmBox::memfd_create(label, 0u8).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{label:?}: {err}");
    }
}

#[test]
fn another_layout_or_backend_is_invalid_data_and_the_segment_is_untouched() {
    let made = ShmBox::memfd_create("typed", Counter::new(5)).unwrap();
    let fd = || fd_of(&made);
    refused::<ShmMutex<i64>>(fd(), ErrorKind::InvalidData, "ShmMutex<i64>");
    refused::<ShmMutex<[u32; 2]>>(fd(), ErrorKind::InvalidData, "ShmMutex<[u32; 2]>");
    refused::<u64>(fd(), ErrorKind::InvalidData, "u64");
    let msg = refused::<shmsync::pthread::ShmMutex<u64>>(fd(), ErrorKind::InvalidData, "pthread");
    assert!(msg.contains("backend"), "{msg}");
    assert_eq!(
        *ShmBox::<Counter>::from_fd(fd()).unwrap().lock().unwrap(),
        5
    );
}

#[test]
fn garbage_is_invalid_data_and_left_alone() {
    let sealed = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    let len = ShmBox::memfd_create("template", Counter::new(0))
        .map(|b| bytes_of(b.memfd().unwrap()).len());
    let len = len.unwrap();
    let mut rng = Rng::new(0x6d65_6d66);
    for round in 0..20 {
        let noise: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        let what = format!("random bytes, round {round}");
        refused::<Counter>(raw_memfd(&noise, sealed), ErrorKind::InvalidData, &what);
    }
    let zeros = vec![0; len];
    refused::<Counter>(
        raw_memfd(&zeros, sealed),
        ErrorKind::InvalidData,
        "all zero",
    );
    // A valid header whose creator never published READY: refused at once.
    let made = ShmBox::memfd_create("template", Counter::new(0)).unwrap();
    let mut bytes = bytes_of(made.memfd().unwrap());
    let state = (INITIALIZING | region_util::my_token()).to_ne_bytes();
    bytes[STATE_OFFSET..STATE_OFFSET + 4].copy_from_slice(&state);
    refused::<Counter>(
        raw_memfd(&bytes, sealed),
        ErrorKind::InvalidData,
        "initialising",
    );
}

#[test]
fn a_truncated_memfd_is_invalid_data() {
    let sealed = libc::F_SEAL_SHRINK;
    let made = ShmBox::memfd_create("template", [7u64; 64]).unwrap();
    let bytes = bytes_of(made.memfd().unwrap());
    for len in [0, 10, HEADER_SIZE - 1, HEADER_SIZE, bytes.len() - 1] {
        let what = format!("cut to {len} bytes");
        refused::<[u64; 64]>(
            raw_memfd(&bytes[..len], sealed),
            ErrorKind::InvalidData,
            &what,
        );
    }
    let whole = raw_memfd(&bytes, sealed);
    assert_eq!(*ShmBox::<[u64; 64]>::from_fd(whole).unwrap(), [7; 64]);
}

#[test]
fn a_memfd_not_sealed_against_shrinking_is_refused() {
    let made = ShmBox::memfd_create("template", Counter::new(0)).unwrap();
    let bytes = bytes_of(made.memfd().unwrap());
    let msg = refused::<Counter>(raw_memfd(&bytes, 0), ErrorKind::InvalidData, "unsealed");
    assert!(msg.contains("not sealed against shrinking"), "{msg}");
    let grow_only = raw_memfd(&bytes, libc::F_SEAL_GROW);
    refused::<Counter>(
        grow_only,
        ErrorKind::InvalidData,
        "sealed against growing only",
    );
}

#[test]
fn descriptors_of_other_things_are_refused() {
    let (socket, _peer) = UnixStream::pair().unwrap();
    refused_without_bytes(socket.into(), ErrorKind::InvalidInput, "a socket");
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 returns.
    let rc = unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both ends are fresh descriptors that nothing else owns.
    let [read, _write] = ends.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    refused_without_bytes(read, ErrorKind::InvalidInput, "a pipe");
    let dir = std::fs::File::open(env!("CARGO_MANIFEST_DIR")).unwrap();
    refused_without_bytes(dir.into(), ErrorKind::InvalidInput, "a directory");
    // A POSIX segment's descriptor holds a valid header but no seals.
    let name = Unlink::new("memfd-posix");
    let _posix = ShmBox::create(name.name(), Counter::new(0)).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.path());
    refused::<Counter>(
        file.unwrap().into(),
        ErrorKind::InvalidData,
        "a POSIX segment",
    );
}

/// `from_fd` of a descriptor that has no bytes to compare: only the error kind is checked.
fn refused_without_bytes(fd: OwnedFd, kind: ErrorKind, what: &str) {
    match ShmBox::<Counter>::from_fd(fd) {
        Ok(_) => panic!("{what}: opened"),
        Err(err) => assert_eq!(err.kind(), kind, "{what}: {err}"),
    }
}

#[test]
fn a_read_only_descriptor_is_permission_denied() {
    let made = ShmBox::memfd_create("read-only", Counter::new(0)).unwrap();
    let path = format!("/proc/self/fd/{}", made.memfd().unwrap().as_raw_fd());
    let read_only = std::fs::File::open(path).unwrap();
    refused::<Counter>(read_only.into(), ErrorKind::PermissionDenied, "read-only");
}

#[test]
fn a_panicking_init_goes_on_to_the_caller() {
    let boom = |_: &mut [u64; 1 << 16]| panic!("init fails");
    let caught = catch_unwind(AssertUnwindSafe(|| ShmBox::memfd_create_with("boom", boom)));
    assert!(caught.is_err());
    let made = ShmBox::<[u64; 1 << 16]>::memfd_create_with("fine", |v| v[9] = 9).unwrap();
    assert_eq!(made[9], 9);
}
