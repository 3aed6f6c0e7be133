//! Thin wrappers over the operating system: clocks, process identity and liveness, errors.

pub(crate) mod error;
pub(crate) mod init_word;
pub(crate) mod liveness;
pub(crate) mod time;
