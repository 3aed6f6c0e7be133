//! shmsync's C API: C programs open the message board that the Rust `writer` and `reader`
//! examples share — a POSIX named shmsync segment holding one [`ShmMutex`] around a
//! [`shmsync_message`] and one [`ShmCondvar`] — and lock, wait on and notify its primitives with
//! shmsync's semantics: a holder's death is a distinct return code
//! ([`SHMSYNC_OWNER_DEAD`]), poison stays until cleared ([`SHMSYNC_POISONED`]), and
//! timeouts are measured on CLOCK_MONOTONIC.
//!
//! Build it as a static (`libshmsync_capi.a`) or shared (`libshmsync_capi.so`) library and
//! include `include/shmsync.h`. The segment's header is shmsync's own: the Rust side checks
//! the layout fingerprint ([`SHMSYNC_BOARD_FINGERPRINT`], exported from the Rust type) on
//! every open, so a C program never types it in; `tests/c_api.rs` compiles a C program that
//! checks the header's sizes, offsets and codes against [`shmsync_abi`].
//!
//! Every function returns `SHMSYNC_OK` (0), a positive outcome code, or a negative error:
//! `-errno`, or [`SHMSYNC_E_LAYOUT`] / [`SHMSYNC_E_STATE`].
//!
//! # Examples
//!
//! The calls a C program makes, here from Rust:
//!
//! ```
//! use shmsync_capi::*;
//! let name = c"/shmsync-capi-doc-crate";
//! let mut board = std::ptr::null_mut();
//! // SAFETY: `name` is a C string and `board` a writable pointer; the handle is closed below.
//! unsafe {
//!     assert_eq!(shmsync_board_open(name.as_ptr(), &mut board), SHMSYNC_OK);
//!     assert_eq!(shmsync_board_lock(board, -1), SHMSYNC_OK);
//!     (*shmsync_board_message(board)).seq += 1;
//!     assert_eq!(shmsync_board_unlock(board), SHMSYNC_OK);
//!     assert_eq!(shmsync_board_notify_all(board), 0); // nobody waits
//!     shmsync_board_close(board);
//!     assert_eq!(shmsync_unlink(name.as_ptr()), SHMSYNC_OK);
//! }
//! ```
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, CStr};
use core::mem::{align_of, offset_of, size_of};
use std::io;
use std::time::Duration;

use shmsync::{ShmBox, ShmCondvar, ShmMutex, ShmMutexGuard, ShmSafe};

/// Success: the call did what it says (for a lock: the lock is held, not poisoned).
///
/// # Examples
///
/// ```
/// assert_eq!(shmsync_capi::SHMSYNC_OK, 0);
/// ```
pub const SHMSYNC_OK: c_int = 0;
/// The lock is held, and this call found that its previous holder died holding it (or a
/// Rust holder panicked): the message may be half written. Repair it, then
/// [`shmsync_board_clear_poison`]; until then every locker gets [`SHMSYNC_POISONED`].
///
/// # Examples
///
/// ```
/// assert_eq!(shmsync_capi::SHMSYNC_OWNER_DEAD, 1);
/// ```
pub const SHMSYNC_OWNER_DEAD: c_int = 1;
/// The lock is held, and it was poisoned before this call (a death that an earlier locker
/// found, and nobody cleared yet).
///
/// # Examples
///
/// ```
/// assert_eq!(shmsync_capi::SHMSYNC_POISONED, 2);
/// ```
pub const SHMSYNC_POISONED: c_int = 2;
/// The timeout passed: for a lock, it is not held; for a wait, it is held again.
///
/// # Examples
///
/// ```
/// assert_eq!(shmsync_capi::SHMSYNC_TIMED_OUT, 3);
/// ```
pub const SHMSYNC_TIMED_OUT: c_int = 3;
/// The segment exists but does not hold a board of this layout (another type, backend or
/// format version, or garbage): shmsync's `InvalidData`.
///
/// # Examples
///
/// ```
/// assert!(shmsync_capi::SHMSYNC_E_LAYOUT < 0);
/// ```
pub const SHMSYNC_E_LAYOUT: c_int = -1000;
/// The call does not fit the handle's state: locking a board this handle holds, unlocking,
/// waiting or reading the message without holding it, or a null argument.
///
/// # Examples
///
/// ```
/// assert!(shmsync_capi::SHMSYNC_E_STATE < 0);
/// ```
pub const SHMSYNC_E_STATE: c_int = -1001;

/// Bytes of text a message holds.
///
/// # Examples
///
/// ```
/// assert_eq!(shmsync_capi::SHMSYNC_TEXT, 120);
/// ```
pub const SHMSYNC_TEXT: usize = 120;

/// The latest message on a board: `text[..len]`, written in the same critical section as
/// `seq`. The same layout as the Rust examples' `Message` (`examples/shared/board.rs`), and
/// as `struct shmsync_message` in `include/shmsync.h`.
///
/// # Examples
///
/// ```
/// assert_eq!(std::mem::size_of::<shmsync_capi::shmsync_message>(), 136);
/// ```
#[derive(ShmSafe, Clone, Copy, Debug)]
#[repr(C)]
pub struct shmsync_message {
    /// The message's number; each writer posts the board's `seq + 1`.
    pub seq: u64,
    /// The process that wrote it.
    pub writer_pid: u32,
    /// How many bytes of `text` are the message.
    pub len: u32,
    /// The message's bytes (not NUL-terminated).
    pub text: [u8; SHMSYNC_TEXT],
}

/// What the segment holds: the Rust examples' `Board`, field for field.
#[derive(ShmSafe)]
#[repr(C)]
struct Board {
    latest: ShmMutex<shmsync_message>,
    posted: ShmCondvar,
}

/// The layout fingerprint of a board segment's value, from the Rust type: the one the
/// segment's header must carry for an open to succeed.
///
/// # Examples
///
/// ```
/// assert_ne!(shmsync_capi::SHMSYNC_BOARD_FINGERPRINT, 0);
/// ```
#[no_mangle]
pub static SHMSYNC_BOARD_FINGERPRINT: u64 = <Board as ShmSafe>::FINGERPRINT;

/// The numbers `include/shmsync.h` repeats, as the Rust side has them: a C program compares
/// its `sizeof`, `offsetof` and macros with [`SHMSYNC_ABI`].
///
/// # Examples
///
/// ```
/// assert_eq!(shmsync_capi::SHMSYNC_ABI.message_size, 136);
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct shmsync_abi {
    /// `sizeof(struct shmsync_message)`.
    pub message_size: usize,
    /// `_Alignof(struct shmsync_message)`.
    pub message_align: usize,
    /// `offsetof(struct shmsync_message, seq)`.
    pub seq_offset: usize,
    /// `offsetof(struct shmsync_message, writer_pid)`.
    pub writer_pid_offset: usize,
    /// `offsetof(struct shmsync_message, len)`.
    pub len_offset: usize,
    /// `offsetof(struct shmsync_message, text)`.
    pub text_offset: usize,
    /// `SHMSYNC_TEXT`.
    pub text_len: usize,
    /// `SHMSYNC_OK`, `SHMSYNC_OWNER_DEAD`, `SHMSYNC_POISONED`, `SHMSYNC_TIMED_OUT`,
    /// `SHMSYNC_E_LAYOUT`, `SHMSYNC_E_STATE`, in that order.
    pub codes: [c_int; 6],
}

/// The Rust side's numbers for `include/shmsync.h`.
///
/// # Examples
///
/// ```
/// assert_eq!(shmsync_capi::SHMSYNC_ABI.codes[1], shmsync_capi::SHMSYNC_OWNER_DEAD);
/// ```
#[no_mangle]
pub static SHMSYNC_ABI: shmsync_abi = shmsync_abi {
    message_size: size_of::<shmsync_message>(),
    message_align: align_of::<shmsync_message>(),
    seq_offset: offset_of!(shmsync_message, seq),
    writer_pid_offset: offset_of!(shmsync_message, writer_pid),
    len_offset: offset_of!(shmsync_message, len),
    text_offset: offset_of!(shmsync_message, text),
    text_len: SHMSYNC_TEXT,
    codes: [
        SHMSYNC_OK,
        SHMSYNC_OWNER_DEAD,
        SHMSYNC_POISONED,
        SHMSYNC_TIMED_OUT,
        SHMSYNC_E_LAYOUT,
        SHMSYNC_E_STATE,
    ],
};

/// A process's handle on a board: the mapped segment and, while this handle holds the
/// lock, its guard. Use a handle from one thread at a time, and unlock on the thread that
/// locked (the guard is that thread's).
///
/// # Examples
///
/// See the [crate] docs.
pub struct shmsync_board {
    /// The guard while locked. Declared first, so it drops before the mapping it borrows.
    guard: Option<ShmMutexGuard<'static, shmsync_message>>,
    board: ShmBox<Board>,
}

impl shmsync_board {
    /// The board in the mapping, for as long as the handle lives.
    fn board(&self) -> &'static Board {
        // SAFETY: the mapping stays at its address until `board` drops, which happens only
        // after the guard (field order) and when the handle is closed; callers keep the
        // reference no longer than the handle (every use is inside one call or in `guard`).
        unsafe { &*(&*self.board as *const Board) }
    }
}

/// A negative code for an `io::Error`: `-errno` when it has one.
fn error_code(e: &io::Error) -> c_int {
    match (e.raw_os_error(), e.kind()) {
        (_, io::ErrorKind::InvalidData) => SHMSYNC_E_LAYOUT,
        (Some(errno), _) => -errno,
        (None, io::ErrorKind::NotFound) => -libc::ENOENT,
        (None, io::ErrorKind::AlreadyExists) => -libc::EEXIST,
        (None, io::ErrorKind::PermissionDenied) => -libc::EACCES,
        (None, io::ErrorKind::TimedOut) => -libc::ETIMEDOUT,
        (None, _) => -libc::EINVAL,
    }
}

/// The segment name behind a C string, or `None` for null or non-UTF-8.
///
/// # Safety
///
/// - `name` is null or a NUL-terminated string.
unsafe fn name_of<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        return None;
    }
    // SAFETY: a non-null `name` is NUL-terminated (caller's contract).
    unsafe { CStr::from_ptr(name) }.to_str().ok()
}

/// An empty board, as the Rust examples create it.
fn empty() -> Board {
    Board {
        latest: ShmMutex::new(shmsync_message {
            seq: 0,
            writer_pid: 0,
            len: 0,
            text: [0; SHMSYNC_TEXT],
        }),
        posted: ShmCondvar::new(),
    }
}

/// Opens the board in the POSIX named segment `name` (`shm_open` rules: a leading `/`, no
/// other), creating an empty one if there is none; on success `*out` is a new handle for
/// [`shmsync_board_close`].
///
/// Returns `SHMSYNC_OK`; [`SHMSYNC_E_LAYOUT`] when `name` holds something else; `-EINVAL`
/// for a bad name; `SHMSYNC_E_STATE` for a null argument; another `-errno` from the system.
///
/// # Safety
///
/// - `name` is null or a NUL-terminated string; `out` is null or valid for a pointer write.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_open(
    name: *const c_char,
    out: *mut *mut shmsync_board,
) -> c_int {
    if out.is_null() {
        return SHMSYNC_E_STATE;
    }
    // SAFETY: `name` is null or NUL-terminated (caller's contract).
    let Some(name) = (unsafe { name_of(name) }) else {
        return SHMSYNC_E_STATE;
    };
    match ShmBox::open_or_create(name, empty) {
        Ok(board) => {
            let handle = Box::new(shmsync_board { guard: None, board });
            // SAFETY: `out` is non-null and writable (caller's contract).
            unsafe { out.write(Box::into_raw(handle)) };
            SHMSYNC_OK
        }
        Err(e) => error_code(&e),
    }
}

/// Closes a handle from [`shmsync_board_open`], unlocking first if it holds the lock. The
/// segment stays (see [`shmsync_unlink`]). A null handle is ignored.
///
/// # Safety
///
/// - `board` is null or a handle from `shmsync_board_open` not closed yet, used by no other
///   thread now; if it holds the lock, this is the thread that locked.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_close(board: *mut shmsync_board) {
    if !board.is_null() {
        // SAFETY: a live handle from `Box::into_raw` (caller's contract); the guard drops
        // before the mapping.
        drop(unsafe { Box::from_raw(board) });
    }
}

/// Removes the segment `name`; handles already open keep working.
///
/// Returns `SHMSYNC_OK`, `-ENOENT` when there is none, or another negative code.
///
/// # Safety
///
/// - `name` is null or a NUL-terminated string.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_unlink(name: *const c_char) -> c_int {
    // SAFETY: `name` is null or NUL-terminated (caller's contract).
    let Some(name) = (unsafe { name_of(name) }) else {
        return SHMSYNC_E_STATE;
    };
    match shmsync::unlink(name) {
        Ok(()) => SHMSYNC_OK,
        Err(e) => error_code(&e),
    }
}

/// The handle behind a C pointer.
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now.
unsafe fn handle<'a>(board: *mut shmsync_board) -> Option<&'a mut shmsync_board> {
    // SAFETY: null or live and unshared (caller's contract).
    unsafe { board.as_mut() }
}

/// Locks the board's mutex, waiting at most `timeout_ns` nanoseconds on CLOCK_MONOTONIC (a
/// negative `timeout_ns` waits for ever; 0 only tries).
///
/// Returns `SHMSYNC_OK`, [`SHMSYNC_OWNER_DEAD`] or [`SHMSYNC_POISONED`] with the lock held
/// (see [`shmsync_board_message`]); [`SHMSYNC_TIMED_OUT`] without it; `SHMSYNC_E_STATE` if this
/// handle holds it already.
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_lock(board: *mut shmsync_board, timeout_ns: i64) -> c_int {
    // SAFETY: null or live and unshared (caller's contract).
    let Some(handle) = (unsafe { handle(board) }) else {
        return SHMSYNC_E_STATE;
    };
    if handle.guard.is_some() {
        return SHMSYNC_E_STATE;
    }
    let latest = &handle.board().latest;
    let was_poisoned = latest.is_poisoned();
    let locked = match u64::try_from(timeout_ns) {
        Err(_) => latest.lock().map_err(std::sync::TryLockError::from),
        Ok(ns) => latest.try_lock_for(Duration::from_nanos(ns)),
    };
    let (guard, code) = match locked {
        Ok(guard) => (guard, SHMSYNC_OK),
        Err(std::sync::TryLockError::WouldBlock) => return SHMSYNC_TIMED_OUT,
        Err(std::sync::TryLockError::Poisoned(p)) => (p.into_inner(), poisoned(was_poisoned)),
    };
    handle.guard = Some(guard);
    code
}

/// The code for a lock that came back poisoned: newly (a death found now) or from before.
fn poisoned(was_poisoned: bool) -> c_int {
    if was_poisoned {
        SHMSYNC_POISONED
    } else {
        SHMSYNC_OWNER_DEAD
    }
}

/// Unlocks the board. Returns `SHMSYNC_OK`, or `SHMSYNC_E_STATE` if this handle does not hold
/// the lock.
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now; this is the thread that
///   locked.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_unlock(board: *mut shmsync_board) -> c_int {
    // SAFETY: null or live and unshared (caller's contract).
    match unsafe { handle(board) }.and_then(|h| h.guard.take()) {
        Some(guard) => {
            drop(guard);
            SHMSYNC_OK
        }
        None => SHMSYNC_E_STATE,
    }
}

/// The message, writable while this handle holds the lock; null otherwise. The pointer is
/// good until the handle unlocks or closes (a wait keeps it valid).
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_message(board: *mut shmsync_board) -> *mut shmsync_message {
    // SAFETY: null or live and unshared (caller's contract).
    match unsafe { handle(board) }.and_then(|h| h.guard.as_mut()) {
        Some(guard) => &mut **guard,
        None => core::ptr::null_mut(),
    }
}

/// Clears the poison after the message is repaired. Returns `SHMSYNC_OK`, or
/// `SHMSYNC_E_STATE` if this handle does not hold the lock.
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_clear_poison(board: *mut shmsync_board) -> c_int {
    // SAFETY: null or live and unshared (caller's contract).
    let Some(handle) = (unsafe { handle(board) }) else {
        return SHMSYNC_E_STATE;
    };
    if handle.guard.is_none() {
        return SHMSYNC_E_STATE;
    }
    handle.board().latest.clear_poison();
    SHMSYNC_OK
}

/// Releases the lock, sleeps on the board's condition variable until notified, spuriously
/// woken, or `timeout_ns` nanoseconds pass on CLOCK_MONOTONIC (negative: no limit), and
/// locks again. A waiter that dies meanwhile harms no one.
///
/// Returns, always with the lock held again: `SHMSYNC_OK`, [`SHMSYNC_TIMED_OUT`], or
/// [`SHMSYNC_OWNER_DEAD`] / [`SHMSYNC_POISONED`] when it came back poisoned. `SHMSYNC_E_STATE`
/// if this handle does not hold the lock.
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now; this is the thread that
///   locked.
///
/// # Examples
///
/// ```
/// use shmsync_capi::*;
/// let name = c"/shmsync-capi-doc-wait";
/// let mut board = std::ptr::null_mut();
/// // SAFETY: `name` is a C string and `board` a writable pointer; closed below.
/// unsafe {
///     assert_eq!(shmsync_board_open(name.as_ptr(), &mut board), SHMSYNC_OK);
///     assert_eq!(shmsync_board_lock(board, 0), SHMSYNC_OK);
///     assert_eq!(shmsync_board_wait(board, 1_000_000), SHMSYNC_TIMED_OUT);
///     assert!(!shmsync_board_message(board).is_null()); // held again
///     shmsync_board_close(board);
///     shmsync_unlink(name.as_ptr());
/// }
/// ```
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_wait(board: *mut shmsync_board, timeout_ns: i64) -> c_int {
    // SAFETY: null or live and unshared (caller's contract).
    let Some(handle) = (unsafe { handle(board) }) else {
        return SHMSYNC_E_STATE;
    };
    let Some(guard) = handle.guard.take() else {
        return SHMSYNC_E_STATE;
    };
    let b = handle.board();
    let was_poisoned = b.latest.is_poisoned();
    // (guard, timed out, came back poisoned)
    let (guard, timed_out, poison) = match u64::try_from(timeout_ns) {
        Err(_) => match b.posted.wait(guard) {
            Ok(g) => (g, false, false),
            Err(p) => (p.into_inner(), false, true),
        },
        Ok(ns) => match b.posted.wait_timeout(guard, Duration::from_nanos(ns)) {
            Ok((g, r)) => (g, r.timed_out(), false),
            Err(p) => {
                let (g, r) = p.into_inner();
                (g, r.timed_out(), true)
            }
        },
    };
    handle.guard = Some(guard);
    match (poison, timed_out) {
        (true, _) => poisoned(was_poisoned),
        (false, true) => SHMSYNC_TIMED_OUT,
        (false, false) => SHMSYNC_OK,
    }
}

/// Wakes one waiter of the board's condition variable; returns 1 if one was woken, else 0.
/// Never blocks, with or without the lock held.
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now.
///
/// # Examples
///
/// ```
/// use shmsync_capi::*;
/// let name = c"/shmsync-capi-doc-notify";
/// let mut board = std::ptr::null_mut();
/// // SAFETY: `name` is a C string and `board` a writable pointer; closed below.
/// unsafe {
///     assert_eq!(shmsync_board_open(name.as_ptr(), &mut board), SHMSYNC_OK);
///     assert_eq!(shmsync_board_notify_one(board), 0);
///     shmsync_board_close(board);
///     shmsync_unlink(name.as_ptr());
/// }
/// ```
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_notify_one(board: *mut shmsync_board) -> c_int {
    // SAFETY: null or live and unshared (caller's contract).
    match unsafe { handle(board) } {
        Some(handle) => c_int::from(handle.board().posted.notify_one()),
        None => SHMSYNC_E_STATE,
    }
}

/// Wakes every waiter of the board's condition variable; returns how many were woken.
/// Never blocks.
///
/// # Safety
///
/// - `board` is null or a live handle used by no other thread now.
///
/// # Examples
///
/// See the [crate] docs.
#[no_mangle]
pub unsafe extern "C" fn shmsync_board_notify_all(board: *mut shmsync_board) -> c_int {
    // SAFETY: null or live and unshared (caller's contract).
    match unsafe { handle(board) } {
        Some(handle) => c_int::try_from(handle.board().posted.notify_all()).unwrap_or(c_int::MAX),
        None => SHMSYNC_E_STATE,
    }
}
