//! The header in front of every named or placed segment, and its validation.
//!
//! Layout (128 bytes, `#[repr(C)]`, native endianness): magic, format version, header size,
//! init state, creator PID, layout fingerprint, backend set, value alignment, value offset,
//! value size, total size, the creator's liveness registry (device and inode), and the value's
//! type name (for messages only). The creator writes every field, then publishes the state
//! `INITIALIZING | token` (its liveness token) with Release, writes the value, then publishes
//! `READY` with Release; openers read the state with Acquire before they trust the value.
//!
//! Liveness tokens are only comparable between processes that use the same registry, so
//! opening refuses (`Unsupported`) a segment whose creator used another one.
//!
//! While the state is not `READY`, an opener asks the kind of segment whether its creator is
//! still at work ([`Creator`]): a named segment's creator holds it (an `flock`, or for System V
//! its `shm_cpid` is alive) until `READY`, so a creator killed before it wrote the header is
//! told apart from one that is merely slow, and a creator that gave up is seen at once.

use std::io;
use std::mem::{align_of, size_of};
use std::time::Duration;

use crate::backend::describe_backends;
use crate::sync::native::AtomicU32;
use crate::sync::Ordering;
use crate::sys::error::invalid_data;
use crate::sys::init_word::{self, State, EMPTY, READY};
use crate::sys::liveness::{self, RegistryId};
use crate::sys::time::Deadline;
use crate::ShmSafe;

/// Identifies a shmsync segment.
pub(crate) const MAGIC: [u8; 8] = *b"SHMSYNC\0";
/// Bumped whenever the header or a primitive's shared layout changes.
pub(crate) const FORMAT_VERSION: u32 = 3;

/// How long a segment that is still all zero may stay so before it is called garbage: the
/// creator writes the header right after sizing the segment.
const EMPTY_GRACE: Duration = Duration::from_millis(200);

/// The segment header as it lies in shared memory (`S` = `AtomicU32`), or as a plain copy
/// read once for validation (`S` = `u32`, [`Fields`]).
#[repr(C)]
pub(crate) struct Header<S = AtomicU32> {
    magic: [u8; 8],
    version: u32,
    header_size: u32,
    state: S,
    creator: u32,
    fingerprint: u64,
    backends: u32,
    value_align: u32,
    value_offset: u64,
    value_size: u64,
    total_size: u64,
    registry_dev: u64,
    registry_ino: u64,
    type_name: [u8; TYPE_NAME_LEN],
}

/// Bytes kept of the value's type name (NUL-padded, cut at a character boundary).
const TYPE_NAME_LEN: usize = 48;

const _: () = assert!(size_of::<Header>() == 128);
const _: () = assert!(align_of::<Header>() == 8);

/// Where a `T` goes in a segment and how large the segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Offset of the value from the start of the segment.
    pub(crate) offset: usize,
    /// Size of the whole segment: header, padding and value.
    pub(crate) total: usize,
}

impl Geometry {
    /// The geometry of a segment holding a `T`.
    pub(crate) const fn of<T>() -> Geometry {
        let align = if align_of::<T>() > 64 {
            align_of::<T>()
        } else {
            64
        };
        let offset = size_of::<Header>().div_ceil(align) * align;
        Geometry {
            offset,
            total: offset + size_of::<T>(),
        }
    }
}

/// The smallest segment that can hold a header.
pub(crate) const HEADER_SIZE: usize = size_of::<Header>();

/// A plain copy of the header's fields, read once.
type Fields = Header<u32>;

const _: () = assert!(size_of::<Fields>() == HEADER_SIZE && align_of::<Fields>() == 8);

impl Fields {
    /// The creator's liveness registry.
    fn registry(&self) -> RegistryId {
        RegistryId {
            dev: self.registry_dev,
            ino: self.registry_ino,
        }
    }
}

/// The type name of `T` as the header stores it.
fn type_name_bytes<T>() -> [u8; TYPE_NAME_LEN] {
    let name = core::any::type_name::<T>();
    let mut end = name.len().min(TYPE_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = [0; TYPE_NAME_LEN];
    bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
    bytes
}

/// A stored type name, for messages.
fn stored_name(bytes: &[u8; TYPE_NAME_LEN]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(TYPE_NAME_LEN);
    let name = String::from_utf8_lossy(&bytes[..end]).into_owned();
    if name.is_empty() {
        "an unnamed type".to_owned()
    } else {
        format!("`{name}`")
    }
}

/// Writes every header field for a `T` and publishes `INITIALIZING | token` (Release).
///
/// # Safety
///
/// - `base` points to at least `Geometry::of::<T>().total` writable bytes, aligned to 64 (or
///   to `T`'s alignment if larger), that no other process trusts yet.
pub(crate) unsafe fn begin_init<T: ShmSafe>(base: *mut u8) {
    let me = liveness::me();
    let registry = liveness::registry_id();
    let geometry = Geometry::of::<T>();
    let header = base.cast::<Header>();
    let fields = Header {
        magic: MAGIC,
        version: FORMAT_VERSION,
        header_size: HEADER_SIZE as u32,
        state: AtomicU32::new(EMPTY),
        creator: me.pid,
        fingerprint: T::FINGERPRINT,
        backends: T::BACKENDS,
        value_align: align_of::<T>() as u32,
        value_offset: geometry.offset as u64,
        value_size: size_of::<T>() as u64,
        total_size: geometry.total as u64,
        registry_dev: registry.dev,
        registry_ino: registry.ino,
        type_name: type_name_bytes::<T>(),
    };
    // SAFETY: `header` is valid for writes per this function's contract.
    unsafe { header.write(fields) };
    // SAFETY: the header was just written; its state word is a live AtomicU32.
    let state = unsafe { &(*header).state };
    state.store(init_word::initializing_by_me(), Ordering::Release);
}

/// Publishes `READY` (Release) after the value is written, and wakes waiting openers.
///
/// # Safety
///
/// - `base` points to a header written by [`begin_init`] in this process, and the value has
///   been written.
pub(crate) unsafe fn finish_init(base: *mut u8) {
    // SAFETY: per the contract, `base` holds a header whose state is a live AtomicU32.
    let state = unsafe { &(*base.cast::<Header>()).state };
    init_word::publish(state, READY);
}

/// What an opener can learn about a segment's creator apart from the header: for POSIX
/// segments from the `flock` the creator holds until `READY`, for System V segments from
/// `shm_cpid` and the `SHM_DEST` mark. Asked only while the segment is not `READY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Creator {
    /// The creator is alive and still holds the segment: wait for it.
    Working,
    /// The creator exited, or gave up, without publishing `READY`: it never will.
    Gone,
    /// The creator gave up and removed the name (or key): new openers will not find it.
    Withdrawn,
    /// The creator is gone, and the segment has no name to remove (a memfd): it goes away
    /// with its last descriptor.
    Unnamed,
    /// This kind of memory cannot tell (a region the application maps itself).
    Unknown,
}

/// Validates the header at `base` for a `T`, waiting (up to `timeout`) for a creator that is
/// still initialising it; `creator` tells a live creator from one that is gone. Reads only;
/// never writes.
///
/// # Safety
///
/// - `base` points to at least `len` readable bytes that stay mapped for the call, aligned to
///   8, and `len >= HEADER_SIZE`.
pub(crate) unsafe fn validate<T: ShmSafe>(
    base: *const u8,
    len: usize,
    what: &str,
    timeout: Duration,
    mut creator: impl FnMut() -> Creator,
) -> io::Result<()> {
    debug_assert!(len >= HEADER_SIZE);
    let header = base.cast::<Header>();
    // SAFETY: the header's state word is in bounds, aligned and only accessed atomically.
    let state = unsafe { &(*header).state };
    let give_up = Deadline::after(timeout);
    let empty_grace = EMPTY_GRACE.min(timeout);
    let empty_until = Deadline::after(empty_grace);
    loop {
        let observed = state.load(Ordering::Acquire);
        if observed != EMPTY {
            // SAFETY: `header` is in bounds; the copy is read volatile because another process
            // may write the bytes at any time and we must not assume they stay put.
            let fields = unsafe { read_fields(header) };
            check_fields::<T>(&fields, len, what)?;
        }
        if observed == READY {
            return Ok(());
        }
        let verdict = judge(observed, what, &mut creator)?;
        // The creator publishes READY before it lets go: look again before calling it gone.
        if verdict != Creator::Working && verdict != Creator::Unknown {
            if state.load(Ordering::Acquire) != observed {
                continue;
            }
            return Err(abandoned(what, observed, verdict));
        }
        let until = match (observed, verdict) {
            (EMPTY, Creator::Unknown) => empty_until,
            _ => give_up,
        };
        if until.is_some_and(Deadline::passed) {
            return Err(not_ready(what, observed, verdict, empty_grace, timeout));
        }
        init_word::wait_for_change(state, observed, until);
    }
}

/// What is known about the creator of a segment in the state `observed` (EMPTY or
/// INITIALIZING). `creator` (the creator's `flock`, or `shm_cpid`) is asked first: it works
/// across PID namespaces. Only when it cannot tell does the token in the state word decide.
fn judge(observed: u32, what: &str, creator: &mut impl FnMut() -> Creator) -> io::Result<Creator> {
    let token = match init_word::decode(observed) {
        State::Empty | State::Ready => return Ok(creator()),
        State::Initializing { token } => token,
        State::Invalid => {
            return Err(invalid_data(format!(
                "{what}: init state 0x{observed:08x} is not a valid state"
            )))
        }
    };
    match creator() {
        Creator::Unknown if init_word::initialiser_is_dead(token) => Ok(Creator::Gone),
        verdict => Ok(verdict),
    }
}

/// The error for a segment whose creator is gone (or withdrew it) before publishing READY.
fn abandoned(what: &str, observed: u32, verdict: Creator) -> io::Error {
    if verdict == Creator::Withdrawn {
        return io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: its creator gave up and removed it before it was initialised"),
        );
    }
    let advice = match verdict {
        Creator::Unnamed => "no process will finish it",
        _ => "unlink it and create it again",
    };
    if observed == EMPTY {
        return invalid_data(format!(
            "{what}: not initialised: its creator died before writing the header; {advice}"
        ));
    }
    invalid_data(format!(
        "{what}: its creator died or gave up while initialising it; {advice}"
    ))
}

fn not_ready(
    what: &str,
    observed: u32,
    verdict: Creator,
    empty_grace: Duration,
    timeout: Duration,
) -> io::Error {
    let timed_out = |msg: String| io::Error::new(io::ErrorKind::TimedOut, msg);
    match (observed, verdict) {
        (EMPTY, Creator::Unknown) => invalid_data(format!(
            "{what}: not initialised (no header was written within {empty_grace:?})"
        )),
        (EMPTY, _) => timed_out(format!(
            "{what}: its creator is alive but wrote no header within {timeout:?}"
        )),
        _ => timed_out(format!(
            "{what}: its creator is still initialising it after {timeout:?}"
        )),
    }
}

/// # Safety
///
/// - `header` points to `HEADER_SIZE` readable bytes, aligned to 8.
unsafe fn read_fields(header: *const Header) -> Fields {
    // SAFETY: `Fields` has the header's layout with a plain `u32` for the atomic state word;
    // every bit pattern is a valid `Fields`; the caller vouches for the bytes.
    unsafe { header.cast::<Fields>().read_volatile() }
}

fn check_fields<T: ShmSafe>(f: &Fields, len: usize, what: &str) -> io::Result<()> {
    let want = Geometry::of::<T>();
    if f.magic != MAGIC {
        return Err(invalid_data(format!(
            "{what}: not a shmsync segment (magic {:02x?}, expected {:02x?})",
            f.magic, MAGIC
        )));
    }
    if f.version != FORMAT_VERSION || f.header_size != HEADER_SIZE as u32 {
        return Err(invalid_data(format!(
            "{what}: format version {} with a {}-byte header, expected version {FORMAT_VERSION} \
             with a {HEADER_SIZE}-byte header",
            f.version, f.header_size
        )));
    }
    if f.creator == 0 {
        return Err(invalid_data(format!(
            "{what}: creator pid 0 is not a valid pid"
        )));
    }
    if f.backends != T::BACKENDS {
        return Err(invalid_data(format!(
            "{what}: holds primitives of backend {}, expected {}",
            describe_backends(f.backends),
            describe_backends(T::BACKENDS)
        )));
    }
    if f.fingerprint != T::FINGERPRINT
        || f.value_size != size_of::<T>() as u64
        || f.value_align != align_of::<T>() as u32
    {
        return Err(layout_mismatch::<T>(f, what));
    }
    if f.value_offset != want.offset as u64 || f.total_size != want.total as u64 {
        return Err(invalid_data(format!(
            "{what}: value at offset {} in {} bytes, expected offset {} in {} bytes",
            f.value_offset, f.total_size, want.offset, want.total
        )));
    }
    if !liveness::compatible(f.registry()) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{what}: created by a process that sees another /dev/shm (liveness registry \
                 {}:{}, this process uses {}:{}); shmsync cannot tell whether processes there \
                 are alive, so it will not share locks with them: share /dev/shm between the \
                 processes (for containers, the same IPC and /dev/shm mount)",
                f.registry_dev,
                f.registry_ino,
                liveness::registry_id().dev,
                liveness::registry_id().ino
            ),
        ));
    }
    if len < want.total {
        return Err(invalid_data(format!(
            "{what}: segment is truncated to {len} bytes, its header says {}",
            want.total
        )));
    }
    Ok(())
}

/// The error for a segment that holds another layout than a `T`, in words: what was created
/// and what was asked for.
fn layout_mismatch<T: ShmSafe>(f: &Fields, what: &str) -> io::Error {
    let created = stored_name(&f.type_name);
    let wanted = stored_name(&type_name_bytes::<T>());
    let same_name = created == wanted;
    invalid_data(format!(
        "{what}: holds {created} ({} bytes, align {}, layout 0x{:016x}), but {wanted} ({} bytes, \
         align {}, layout 0x{:016x}) was asked for{}",
        f.value_size,
        f.value_align,
        f.fingerprint,
        size_of::<T>(),
        align_of::<T>(),
        T::FINGERPRINT,
        if same_name {
            ": the two programs declare this type differently (field types, order or array \
             lengths)"
        } else {
            ""
        }
    ))
}

/// A header's fields as the inspector shows them, decoded from a copy of its bytes: `None`
/// when the bytes do not start with the shmsync magic. Any bytes decode; nothing is trusted.
pub(crate) fn summary(bytes: &[u8; HEADER_SIZE]) -> Option<super::inspect::SegmentInfo> {
    // SAFETY: `Fields` is repr(C) integers and byte arrays, for which every bit pattern is a
    // value, and `bytes` is HEADER_SIZE long; the read is unaligned.
    let f: Fields = unsafe { bytes.as_ptr().cast::<Fields>().read_unaligned() };
    if f.magic != MAGIC {
        return None;
    }
    let name_end = f
        .type_name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(TYPE_NAME_LEN);
    Some(super::inspect::SegmentInfo {
        format_version: f.version,
        type_name: String::from_utf8_lossy(&f.type_name[..name_end]).into_owned(),
        backends: describe_backends(f.backends),
        creator_pid: f.creator,
        value_size: f.value_size,
        total_size: f.total_size,
        state: match init_word::decode(f.state) {
            State::Empty => super::inspect::SegmentState::Empty,
            State::Ready => super::inspect::SegmentState::Ready,
            State::Initializing { token } if init_word::initialiser_is_dead(token) => {
                super::inspect::SegmentState::Abandoned
            }
            State::Initializing { .. } => super::inspect::SegmentState::Initializing,
            State::Invalid => super::inspect::SegmentState::Invalid,
        },
    })
}
