//! Model-checking protocols built on shmsync with [loom](https://docs.rs/loom).
//!
//! This module exists only when shmsync is built with `--cfg shmsync_loom`. Under that cfg
//! the futex backend's atomics, futex wait/wake, spin back-off, clock and process liveness
//! all run through loom, so that `loom::model` explores every interleaving of *your* code
//! that locks, waits and notifies on [`ShmMutex`](crate::ShmMutex) and
//! [`ShmCondvar`](crate::ShmCondvar). Loom threads stand in for processes.
//!
//! # Setting it up
//!
//! ```toml
//! [target.'cfg(shmsync_loom)'.dev-dependencies]
//! loom = "0.7"
//! ```
//!
//! Put the models in a test gated on the same cfg (`#![cfg(shmsync_loom)]` at the top of
//! `tests/loom_protocol.rs`), and run them in release mode, with a preemption bound:
//!
//! ```text
//! RUSTFLAGS="--cfg shmsync_loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test --release --test loom_protocol
//! ```
//!
//! A failing model prints the interleaving with `LOOM_LOG=trace` and replays it with
//! `LOOM_CHECKPOINT_FILE` (see loom's docs).
//!
//! # Why a namespaced cfg
//!
//! The switch is the cfg `shmsync_loom`, not loom's customary `--cfg loom` and not a cargo
//! feature. `--cfg loom` flips every crate in the build that knows it (tokio, for one) into
//! its own loom mode, whether the model needs that or not; `shmsync_loom` switches only
//! shmsync, and composes: set both when the model also uses tokio's loom mode. A feature would
//! be additive: one crate in a workspace enabling it would turn every other user's shmsync
//! into a model that panics outside `loom::model`. loom is a dependency of shmsync only under
//! the cfg (`[target.'cfg(shmsync_loom)'.dependencies]`), so a normal build has none.
//!
//! # What changes under the switch
//!
//! - The primitives live in ordinary memory: `Arc<ShmMutex<T>>` (loom's or std's `Arc`) is
//!   the usual way to share one between model threads. Make them inside the model closure,
//!   never in a `static`: loom starts afresh for each interleaving.
//! - [`ShmBox::new`](crate::ShmBox::new) puts the value in heap memory (there is no `fork`
//!   in a model). POSIX named and System V segments and [`ShmRef`](crate::ShmRef) placement
//!   return an [`io::ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported) error, so
//!   code that also opens segments still compiles.
//! - Only the futex backend exists, on every platform: `shmsync::pthread` is left out, since
//!   its lock is the C library's `pthread_mutex_t`, which loom cannot see into. Code that
//!   names `shmsync::pthread` fails to compile under the switch (`could not find pthread`);
//!   use the crate-root types, which are the futex backend's there.
//! - Each loom thread is its own simulated process, numbered on first use. A holder's
//!   death is simulated with [`die_holding`]; the next locker gets `Err(PoisonError)`, as
//!   after a real `SIGKILL`.
//! - Timeouts (`try_lock_for`, `wait_timeout`, ...) use a simulated clock: a timed wait may
//!   time out at any moment (loom explores both outcomes), and never blocks a model.
//! - Every guard is one access to a loom cell, so a guard not ordered after the previous one
//!   is a causality violation; a lost wake-up is a deadlock that loom reports.
//!
//! # Examples
//!
//! A worker dies in the middle of an update; the survivor sees the poison, repairs the
//! value and clears it:
//!
//! ```no_run
//! use loom::sync::Arc;
//! use shmsync::ShmMutex;
//!
//! loom::model(|| {
//!     let pair = Arc::new(ShmMutex::new([0u32; 2]));
//!     let worker = {
//!         let pair = pair.clone();
//!         loom::thread::spawn(move || {
//!             let mut g = pair.lock().unwrap();
//!             g[0] += 1; // half of the update
//!             shmsync::loom::die_holding(g);
//!         })
//!     };
//!     let mut g = match pair.lock() {
//!         Ok(g) => g,
//!         Err(poisoned) => {
//!             let mut g = poisoned.into_inner();
//!             g[1] = g[0]; // repair
//!             pair.clear_poison();
//!             g
//!         }
//!     };
//!     g[0] += 1;
//!     g[1] += 1;
//!     assert_eq!(g[0], g[1]);
//!     drop(g);
//!     worker.join().unwrap();
//! });
//! ```

use crate::futex::ShmMutexGuard;

/// The simulated PID of the calling model thread: 1, 2, ... in the order threads first use a
/// primitive (or call this) in each execution of the model.
///
/// # Examples
///
/// ```no_run
/// loom::model(|| {
///     let me = shmsync::loom::process_id();
///     let other = loom::thread::spawn(shmsync::loom::process_id).join().unwrap();
///     assert_ne!(me, other);
/// });
/// ```
pub fn process_id() -> u32 {
    super::liveness::pid()
}

/// Ends `guard` without unlocking, as a process killed while holding the lock would: the
/// lock stays held and the value keeps whatever was written so far. Call [`die`] next (after
/// abandoning every other guard the thread holds), or use [`die_holding`].
///
/// # Examples
///
/// A process that dies holding two locks:
///
/// ```no_run
/// use loom::sync::Arc;
/// use shmsync::ShmMutex;
/// loom::model(|| {
///     let (a, b) = (Arc::new(ShmMutex::new(0u8)), Arc::new(ShmMutex::new(0u8)));
///     let (a2, b2) = (a.clone(), b.clone());
///     loom::thread::spawn(move || {
///         shmsync::loom::abandon(a2.lock().unwrap());
///         shmsync::loom::die_holding(b2.lock().unwrap());
///     })
///     .join()
///     .unwrap();
///     assert!(a.lock().is_err() && b.lock().is_err());
/// });
/// ```
pub fn abandon<T>(guard: ShmMutexGuard<'_, T>) {
    guard.leak();
}

/// The calling model thread's simulated process dies: from now on, liveness probes find it
/// dead, and lockers waiting on a lock it holds take the lock over with poison. The thread
/// must hold no guard (see [`abandon`]) and must not use a primitive again; return from it.
///
/// # Panics
///
/// A later use of a primitive by the same thread panics.
///
/// # Examples
///
/// ```no_run
/// loom::model(|| {
///     loom::thread::spawn(shmsync::loom::die).join().unwrap();
/// });
/// ```
pub fn die() {
    super::liveness::die();
}

/// The calling model thread's process dies holding `guard`'s lock: [`abandon`] then [`die`].
/// The next locker gets `Err(PoisonError)` carrying a usable guard, as after a real
/// `SIGKILL`. Return from the thread right after.
///
/// # Examples
///
/// ```no_run
/// use loom::sync::Arc;
/// loom::model(|| {
///     let m = Arc::new(shmsync::ShmMutex::new(0u32));
///     let m2 = m.clone();
///     loom::thread::spawn(move || shmsync::loom::die_holding(m2.lock().unwrap()))
///         .join()
///         .unwrap();
///     assert!(m.lock().is_err());
/// });
/// ```
pub fn die_holding<T>(guard: ShmMutexGuard<'_, T>) {
    abandon(guard);
    die();
}
