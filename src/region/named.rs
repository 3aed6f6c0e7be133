//! What POSIX and System V segments share: the errors of `create` and `open`, the
//! `open_or_create` loop, and removing a segment whose creation did not complete.
//!
//! Each kind supplies two attempts: `try_open` (`Ok(None)` when nothing answers to the name)
//! and `try_create` (`Ok(Err(init))`, handing the closure back, when the name is taken).

use std::io;

use super::fill::Fill;
use super::ShmBox;
use crate::ShmSafe;

/// How many times `open_or_create` goes round when the name keeps vanishing between its open
/// and its create before it gives up.
const ROUNDS: usize = 1000;

/// The result of `create`: a taken name is `AlreadyExists`.
pub(crate) fn created<T: ShmSafe, F>(
    what: &str,
    attempt: io::Result<Result<ShmBox<T>, F>>,
) -> io::Result<ShmBox<T>> {
    match attempt? {
        Ok(boxed) => Ok(boxed),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{what}: already exists"),
        )),
    }
}

/// The result of `open`: a missing name is `NotFound`.
pub(crate) fn opened<T: ShmSafe>(
    what: &str,
    attempt: io::Result<Option<ShmBox<T>>>,
) -> io::Result<ShmBox<T>> {
    match attempt? {
        Some(boxed) => Ok(boxed),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{what}: no such segment"),
        )),
    }
}

/// Opens the segment, or creates it with `init`, which runs only once the name is ours.
///
/// Each round opens the segment, creates it, or sees it vanish and tries again: removed
/// between the two attempts, or withdrawn by a creator whose `init` panicked (`try_open`
/// then fails with `NotFound`).
pub(crate) fn open_or_create<T: ShmSafe, F: Fill<T>>(
    what: &str,
    mut try_open: impl FnMut() -> io::Result<Option<ShmBox<T>>>,
    mut try_create: impl FnMut(F) -> io::Result<Result<ShmBox<T>, F>>,
    init: F,
) -> io::Result<ShmBox<T>> {
    let mut init = init;
    for _ in 0..ROUNDS {
        match try_open() {
            Ok(Some(boxed)) => return Ok(boxed),
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match try_create(init)? {
            Ok(boxed) => return Ok(boxed),
            Err(back) => init = back,
        }
    }
    Err(io::Error::other(format!(
        "{what}: kept appearing and disappearing while being opened"
    )))
}

/// Removes a segment this process is creating unless [`keep`](Self::keep) is called: on an
/// error return, and while a panic of the init closure unwinds (the panic then goes on), so
/// that no half-made segment is left for others to find under the name.
pub(crate) struct Discard<R: FnOnce()> {
    remove: Option<R>,
}

impl<R: FnOnce()> Discard<R> {
    /// Arms the guard with the removal to run.
    pub(crate) fn new(remove: R) -> Self {
        Discard {
            remove: Some(remove),
        }
    }

    /// The segment is initialised: keep it.
    pub(crate) fn keep(mut self) {
        self.remove = None;
    }
}

impl<R: FnOnce()> Drop for Discard<R> {
    fn drop(&mut self) {
        if let Some(remove) = self.remove.take() {
            remove();
        }
    }
}
