//! Thin wrappers over the operating system: clocks, process identity and liveness, errors.

pub(crate) mod error;
pub(crate) mod init_word;
pub(crate) mod liveness;
#[cfg(target_os = "linux")]
pub(crate) mod ofd;
pub(crate) mod time;
