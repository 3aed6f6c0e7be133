//! Reading a segment's header for diagnostics, without knowing (or trusting) its type.

use std::io;

use super::header::HEADER_SIZE;

/// What a shmsync segment's header says, read from a copy of its bytes: for listing and
/// inspecting segments (the `shmsync` command does), not for using them.
///
/// # Examples
///
/// ```
/// use shmsync::{SegmentState, ShmBox, ShmMutex};
/// let name = format!("/shmsync-doc-info-{}", std::process::id());
/// let _segment = ShmBox::create(&name, ShmMutex::new(0u64)).unwrap();
/// let info = shmsync::segment_info(&name).unwrap();
/// assert_eq!(info.state(), SegmentState::Ready);
/// assert!(info.type_name().contains("ShmMutex"));
/// assert_eq!(info.creator_pid(), std::process::id());
/// shmsync::unlink(&name).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub(crate) format_version: u32,
    pub(crate) type_name: String,
    pub(crate) backends: String,
    pub(crate) creator_pid: u32,
    pub(crate) value_size: u64,
    pub(crate) total_size: u64,
    pub(crate) state: SegmentState,
}

/// How far a segment's creator got, as its header says.
///
/// # Examples
///
/// ```
/// assert_ne!(shmsync::SegmentState::Ready, shmsync::SegmentState::Abandoned);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentState {
    /// The header is written but the creator has not started (a moment after creation).
    Empty,
    /// A live creator is writing the value.
    Initializing,
    /// The creator died (the kernel says so) before the value was ready: no one will finish it.
    Abandoned,
    /// The value is ready to be opened.
    Ready,
    /// A state word no shmsync process writes.
    Invalid,
}

impl SegmentState {
    /// A lower-case word for tables and JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmsync::SegmentState::Ready.as_str(), "ready");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            SegmentState::Empty => "empty",
            SegmentState::Initializing => "initializing",
            SegmentState::Abandoned => "abandoned",
            SegmentState::Ready => "ready",
            SegmentState::Invalid => "invalid",
        }
    }
}

impl SegmentInfo {
    /// Decodes a copy of a segment's first bytes; `None` when they are not a shmsync header.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmsync::SegmentInfo::from_bytes(&[0u8; 200]).is_none());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Option<SegmentInfo> {
        let header: &[u8; HEADER_SIZE] = bytes.get(..HEADER_SIZE)?.try_into().ok()?;
        super::header::summary(header)
    }

    /// The segment format version (this build writes and opens version
    /// [`FORMAT_VERSION`](Self::FORMAT_VERSION)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmsync::SegmentInfo::FORMAT_VERSION >= 2);
    /// ```
    pub const fn format_version(&self) -> u32 {
        self.format_version
    }

    /// The format version this build of shmsync writes and opens.
    pub const FORMAT_VERSION: u32 = super::header::FORMAT_VERSION;

    /// The Rust type name the creator recorded (cut to 48 bytes; for messages only).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("/shmsync-doc-info-type-{}", std::process::id());
    /// let _s = shmsync::ShmBox::create(&name, 0u32).unwrap();
    /// assert_eq!(shmsync::segment_info(&name).unwrap().type_name(), "u32");
    /// shmsync::unlink(&name).unwrap();
    /// ```
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The backends of the primitives inside, as `futex`, `pthread`, `futex+pthread` or `none`.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("/shmsync-doc-info-backend-{}", std::process::id());
    /// let _s = shmsync::ShmBox::create(&name, shmsync::futex::ShmMutex::new(0u8)).unwrap();
    /// assert_eq!(shmsync::segment_info(&name).unwrap().backends(), "futex");
    /// shmsync::unlink(&name).unwrap();
    /// ```
    pub fn backends(&self) -> &str {
        &self.backends
    }

    /// The creator's PID in its own PID namespace.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("/shmsync-doc-info-pid-{}", std::process::id());
    /// let _s = shmsync::ShmBox::create(&name, 0u8).unwrap();
    /// assert_eq!(shmsync::segment_info(&name).unwrap().creator_pid(), std::process::id());
    /// shmsync::unlink(&name).unwrap();
    /// ```
    pub const fn creator_pid(&self) -> u32 {
        self.creator_pid
    }

    /// The size of the value in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("/shmsync-doc-info-size-{}", std::process::id());
    /// let _s = shmsync::ShmBox::create(&name, [0u8; 100]).unwrap();
    /// let info = shmsync::segment_info(&name).unwrap();
    /// assert_eq!(info.value_size(), 100);
    /// assert!(info.total_size() > 100);
    /// shmsync::unlink(&name).unwrap();
    /// ```
    pub const fn value_size(&self) -> u64 {
        self.value_size
    }

    /// The size of the whole segment: header, padding and value.
    pub const fn total_size(&self) -> u64 {
        self.total_size
    }

    /// How far the creator got.
    pub const fn state(&self) -> SegmentState {
        self.state
    }
}

/// Reads the header of the POSIX named segment `name` (a copy of its first bytes, through a
/// read-only descriptor; nothing is mapped or written).
///
/// # Errors
///
/// `NotFound`, `PermissionDenied`, `InvalidInput` for a bad name, `InvalidData` when the
/// segment is not a shmsync segment (or its creator has not written the header yet);
/// `Unsupported` under `--cfg shmsync_loom`.
///
/// # Examples
///
/// ```
/// let err = shmsync::segment_info("/shmsync-doc-no-such-segment").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// ```
pub fn segment_info(name: &str) -> io::Result<SegmentInfo> {
    super::segments_supported("segment_info")?;
    let bytes = super::posix::read_header(name)?;
    SegmentInfo::from_bytes(&bytes).ok_or_else(|| {
        crate::sys::error::invalid_data(format!("segment {name}: not a shmsync segment"))
    })
}
