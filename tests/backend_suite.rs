//! The backend test suite: every body in `tests/backend/` runs once per backend, through
//! `backend_tests!`, plus the tests that only make sense for one backend.

mod common;
#[macro_use]
mod backend;

backend_tests!(pthread);
// backend_tests!(futex);
