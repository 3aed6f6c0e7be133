//! Building `io::Error`s that say what was expected and what was found.

use std::io;

/// The last OS error, with `what` (an operation and its subject) in front of its message.
pub(crate) fn last_os_error(what: impl std::fmt::Display) -> io::Error {
    with_context(io::Error::last_os_error(), what)
}

/// `err` with `what` in front of its message; the kind is kept.
pub(crate) fn with_context(err: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Panics for an error code that means a bug in this crate (or memory overwritten behind its
/// back), naming the call that returned it. Errors a user can meet become `io::Error`s instead.
#[cold]
#[track_caller]
pub(crate) fn bug(op: &str, errno: i32) -> ! {
    panic!("{op} failed: {}", io::Error::from_raw_os_error(errno))
}

/// An `InvalidData` error: the segment's contents do not match what was expected.
pub(crate) fn invalid_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// An `InvalidInput` error: the caller's argument is unusable.
pub(crate) fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}
