//! Helpers for the region tests: segment clean-up guards, raw segment files, a small PRNG.
#![allow(dead_code)]

use std::ffi::CString;
use std::io;
use std::path::PathBuf;

/// Offset of the format version in the segment header.
pub const VERSION_OFFSET: usize = 8;
/// Offset of the init state word in the segment header.
pub const STATE_OFFSET: usize = 16;
/// Offset of the creator pid in the segment header.
pub const CREATOR_OFFSET: usize = 20;
/// Size of the segment header.
pub const HEADER_SIZE: usize = 128;
/// The header's init state while its creator is still writing the value (ORed with its
/// liveness token).
pub const INITIALIZING: u32 = 1 << 31;
/// The largest liveness token the header can hold.
pub const TOKEN_MASK: u32 = (1 << 30) - 1;

/// Unlinks a POSIX segment name when dropped, so a failing test leaves nothing in /dev/shm.
pub struct Unlink(pub String);

impl Unlink {
    /// A fresh unique name, unlinked when the guard drops.
    pub fn new(tag: &str) -> Unlink {
        Unlink(super::common::unique_name(tag))
    }

    /// The segment name (`/...`).
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The segment's file under /dev/shm.
    pub fn path(&self) -> PathBuf {
        dev_shm_path(&self.0)
    }
}

impl Drop for Unlink {
    fn drop(&mut self) {
        let cname = CString::new(self.0.as_str()).expect("test names have no NUL");
        // SAFETY: `cname` is NUL-terminated; a missing name is fine (ENOENT is ignored).
        unsafe { libc::shm_unlink(cname.as_ptr()) };
    }
}

/// Removes a System V segment (by id) when dropped.
pub struct Rmid(pub i32);

impl Drop for Rmid {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer; an id already removed just fails with EINVAL.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, core::ptr::null_mut()) };
    }
}

/// Removes a file when dropped.
pub struct RemoveFile(pub PathBuf);

impl Drop for RemoveFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A temporary file path unique to this process and `tag`, removed on drop.
pub fn temp_file(tag: &str) -> RemoveFile {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("shmsync-test-{}-{tag}-{n}", std::process::id()));
    RemoveFile(path)
}

/// Where glibc keeps the POSIX segment `name`.
pub fn dev_shm_path(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name.trim_start_matches('/'))
}

/// Creates the POSIX segment `name` by hand (`shm_open(O_CREAT | O_EXCL)`, mode 0600) holding
/// exactly `bytes`, as a foreign or broken creator would.
pub fn write_raw_segment(name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let cname = CString::new(name).expect("test names have no NUL");
    // SAFETY: `cname` is NUL-terminated and outlives the call.
    let fd = unsafe {
        libc::shm_open(
            cname.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o600 as libc::mode_t,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.set_len(bytes.len() as u64)?;
    file.write_all(bytes)
}

/// The current bytes of the POSIX segment `name`.
pub fn read_segment(name: &str) -> Vec<u8> {
    std::fs::read(dev_shm_path(name)).expect("read segment file")
}

/// The bytes of a valid segment holding `value`, made by `ShmBox::create` and unlinked again.
pub fn valid_segment_bytes<T: shmsync::ShmSafe>(value: T) -> Vec<u8> {
    let guard = Unlink::new("template");
    let created = shmsync::ShmBox::create(guard.name(), value).expect("create template");
    let bytes = read_segment(guard.name());
    drop(created);
    bytes
}

/// Sets the header's state word in `bytes`.
pub fn set_state(bytes: &mut [u8], state: u32) {
    bytes[STATE_OFFSET..STATE_OFFSET + 4].copy_from_slice(&state.to_ne_bytes());
}

/// The header's state word in `bytes`.
pub fn state(bytes: &[u8]) -> u32 {
    u32::from_ne_bytes(bytes[STATE_OFFSET..STATE_OFFSET + 4].try_into().unwrap())
}

/// This process's liveness token, as creators write it into the init state.
pub fn my_token() -> u32 {
    shmsync::futex::__test_hooks::my_token()
}

/// This process's pid.
pub fn my_pid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// Whether the tests run as root (needed to act as another user).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The unprivileged user and group the permission tests switch to.
pub const NOBODY: u32 = 65534;

/// In a forked child running as root: becomes `nobody`. Returns false on failure.
pub fn become_nobody() -> bool {
    // SAFETY: an empty group list needs no buffer; it changes only this forked process.
    let groups = unsafe { libc::setgroups(0, core::ptr::null()) };
    // SAFETY: setgid changes only this forked process's credentials.
    let gid = unsafe { libc::setgid(NOBODY) };
    // SAFETY: setuid changes only this forked process's credentials.
    let uid = unsafe { libc::setuid(NOBODY) };
    groups == 0 && gid == 0 && uid == 0
}

/// Removes whatever System V segment `key` names when dropped (segments made by children).
pub struct RmKey(pub i32);

impl Drop for RmKey {
    fn drop(&mut self) {
        // SAFETY: shmget with size 0 and no flags only looks the key up.
        let id = unsafe { libc::shmget(self.0, 0, 0) };
        if id >= 0 {
            drop(Rmid(id));
        }
    }
}

/// A System V key from `ftok` of a fresh temporary file (kept while the key is in use).
pub fn ftok_key(tag: &str, proj_id: u8) -> (RemoveFile, i32) {
    let file = temp_file(tag);
    std::fs::write(&file.0, b"key").expect("create key file");
    match shmsync::SysvKey::ftok(&file.0, proj_id).expect("ftok") {
        shmsync::SysvKey::Key(k) => (file, k),
        shmsync::SysvKey::Private => unreachable!("ftok gives a key"),
    }
}

/// `IPC_STAT` of a System V segment: (owner uid, mode bits, size).
pub fn sysv_stat(id: i32) -> (u32, u32, usize) {
    // SAFETY: shmid_ds is plain data for which all zeroes is valid.
    let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    assert_eq!(rc, 0, "IPC_STAT: {}", io::Error::last_os_error());
    (
        ds.shm_perm.uid,
        u32::from(ds.shm_perm.mode) & 0o777,
        ds.shm_segsz,
    )
}

/// `IPC_STAT` of a System V segment: (owner uid, creator uid).
pub fn sysv_owners(id: i32) -> (u32, u32) {
    // SAFETY: shmid_ds is plain data for which all zeroes is valid.
    let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    assert_eq!(rc, 0, "IPC_STAT: {}", io::Error::last_os_error());
    (ds.shm_perm.uid, ds.shm_perm.cuid)
}

/// `IPC_SET`s the owner uid of a System V segment (its creator uid stays); whether it worked.
pub fn set_sysv_owner(id: i32, uid: u32) -> bool {
    // SAFETY: shmid_ds is plain data for which all zeroes is valid.
    let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } != 0 {
        return false;
    }
    ds.shm_perm.uid = uid;
    // SAFETY: `ds` is a valid shmid_ds, filled in by IPC_STAT above.
    unsafe { libc::shmctl(id, libc::IPC_SET, &mut ds) == 0 }
}

/// Removes an empty directory when dropped.
pub struct RemoveDir(pub PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `flock(file, op)`; whether it succeeded.
pub fn flock(file: &std::fs::File, op: i32) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open descriptor touches no memory.
    unsafe { libc::flock(file.as_raw_fd(), op) == 0 }
}

/// Takes, on a fresh descriptor of the POSIX segment `name`, the exclusive lock that a live
/// creator holds until its segment is READY; held until the file drops.
pub fn hold_creator_lock(name: &str) -> std::fs::File {
    let file = std::fs::File::open(dev_shm_path(name)).expect("open segment file");
    assert!(
        flock(&file, libc::LOCK_EX),
        "flock: {}",
        io::Error::last_os_error()
    );
    file
}

/// Whether some process holds the creator's lock on the POSIX segment `name`.
pub fn creator_lock_held(name: &str) -> bool {
    let file = std::fs::File::open(dev_shm_path(name)).expect("open segment file");
    !flock(&file, libc::LOCK_SH | libc::LOCK_NB)
}

/// Does what shmsync's creator does first: `shm_open(O_CREAT | O_EXCL)`, mode 0600, then
/// the exclusive lock, then sizes the segment to `len` bytes (all zero).
pub fn create_locked(name: &str, len: u64) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    let cname = CString::new(name).expect("test names have no NUL");
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    // SAFETY: `cname` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::shm_open(cname.as_ptr(), flags, 0o600 as libc::mode_t) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    if !flock(&file, libc::LOCK_EX) {
        return Err(io::Error::last_os_error());
    }
    file.set_len(len)?;
    Ok(file)
}

/// Finishes a segment by hand, as its creator would: copies `header` (the first
/// `HEADER_SIZE` bytes of a valid segment) with an EMPTY state, then stores the `u64` value
/// at offset `HEADER_SIZE`, then publishes READY.
///
/// # Safety
///
/// - `base` points to at least `HEADER_SIZE + 8` writable bytes, 8-aligned, shared only through atomics
///   by anyone else while this runs.
pub unsafe fn publish_by_hand(base: *mut u8, header: &[u8], value: u64) {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
    let mut fields = header[..HEADER_SIZE].to_vec();
    set_state(&mut fields, 0);
    // SAFETY: the caller vouches for HEADER_SIZE writable bytes at `base`.
    unsafe { core::ptr::copy_nonoverlapping(fields.as_ptr(), base, HEADER_SIZE) };
    // SAFETY: offset HEADER_SIZE holds the 8-aligned value within the bytes.
    let slot = unsafe { &*base.add(HEADER_SIZE).cast::<AtomicU64>() };
    slot.store(value, SeqCst);
    // SAFETY: offset 16 holds the 4-aligned state word.
    let state = unsafe { &*base.add(STATE_OFFSET).cast::<AtomicU32>() };
    state.store(1, SeqCst);
}

/// [`publish_by_hand`] into the POSIX segment `name`.
pub fn publish_posix_by_hand(name: &str, header: &[u8], value: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev_shm_path(name))
        .expect("open segment file");
    // SAFETY: the segment file is shared with the opener only through atomics.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.expect("map segment");
    assert!(map.len() >= HEADER_SIZE + 8);
    // SAFETY: the mapping is at least 72 page-aligned bytes.
    unsafe { publish_by_hand(map.as_mut_ptr(), header, value) };
}

/// [`publish_by_hand`] into the System V segment `id`.
pub fn publish_sysv_by_hand(id: i32, header: &[u8], value: u64) {
    // SAFETY: attaching at an address of the kernel's choosing touches no existing memory.
    let base = unsafe { libc::shmat(id, core::ptr::null(), 0) };
    assert_ne!(base as isize, -1, "shmat: {}", io::Error::last_os_error());
    assert!(sysv_stat(id).2 >= HEADER_SIZE + 8);
    // SAFETY: the segment is at least 72 page-aligned bytes.
    unsafe { publish_by_hand(base.cast(), header, value) };
    // SAFETY: `base` came from shmat above.
    unsafe { libc::shmdt(base) };
}

/// How many attachments the System V segment `id` has (one per `shmat`).
pub fn sysv_attached(id: i32) -> u64 {
    // SAFETY: shmid_ds is plain data for which all zeroes is valid.
    let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    assert_eq!(rc, 0, "IPC_STAT: {}", io::Error::last_os_error());
    ds.shm_nattch as u64
}

/// How many descriptors of this process refer to the POSIX segment `name`.
pub fn open_descriptors(name: &str) -> usize {
    let target = dev_shm_path(name);
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|link| *link == target)
        .count()
}
