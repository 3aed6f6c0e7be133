//! Loom models of shmsync's futex algorithms.
//!
//! The backend sources (`src/backend/futex/`, `src/backend/seq_condvar.rs`) are compiled here
//! verbatim, through `#[path]` modules, against a loom-flavoured [`sync`] module that has the
//! same names as shmsync's own: atomics, a futex wait/wake emulation, a simulated clock and a
//! simulated liveness oracle. shmsync itself never depends on loom (`cargo tree -e normal -p
//! shmsync` shows none).
//!
//! The models are in `src/models.rs`, which says what preemption bound they use and why.

pub mod backend;
pub mod sync;

/// What the backend sources call `crate::sys`.
pub mod sys {
    /// What the backend sources call `crate::sys::time`.
    pub mod time {
        pub use crate::sync::Deadline;
    }
}

#[cfg(test)]
mod models;
