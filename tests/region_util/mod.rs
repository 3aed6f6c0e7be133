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
pub const HEADER_SIZE: usize = 64;
/// The header's init state while its creator is still writing the value (ORed with its pid).
pub const INITIALIZING: u32 = 1 << 31;
/// The largest pid the header can hold.
pub const PID_MASK: u32 = (1 << 22) - 1;

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

/// xorshift64*: a small deterministic PRNG, so that a failing fuzz case can be replayed.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (zero is replaced by a fixed constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
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
