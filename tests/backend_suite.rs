//! The backend test suite: every body in `tests/backend/` runs once per backend, through
//! `backend_tests!`, plus the tests that only make sense for one backend. Linux only: the
//! fork helpers wait on pidfds.
#![cfg(target_os = "linux")]

mod common;
#[macro_use]
mod backend;

backend_tests!(pthread);
backend_tests!(futex);
