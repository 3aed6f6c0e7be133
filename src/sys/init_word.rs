//! The one-word protocol by which a process initialises shared state that others wait for:
//! a lazily initialised C object (the pthread backend's mutex) and a segment's header.
//!
//! ```text
//! EMPTY (0) ──CAS or store──▶ INITIALIZING | token ──store (Release)──▶ READY (1)
//! ```
//!
//! The token is the initialiser's liveness token (`crate::sys::liveness`), so a waiter can ask
//! whether the initialiser is certainly dead (then the work is abandoned, or taken over)
//! rather than merely out of sight. Users check `READY` with an Acquire load before they touch
//! what it guards.

use core::time::Duration;

use crate::sync::native::AtomicU32;
use crate::sync::Ordering;
use crate::sys::liveness::{self, Verdict, TOKEN_MASK};
use crate::sys::time::Deadline;

/// Nothing written yet.
pub(crate) const EMPTY: u32 = 0;
/// Initialised: usable by every process.
pub(crate) const READY: u32 = 1;
/// Set while a process initialises; the low [`TOKEN_MASK`] bits hold its liveness token.
pub(crate) const INITIALIZING: u32 = 1 << 31;

/// How often a waiter looks again whether the initialiser still lives, when nothing wakes it.
const RECHECK: Duration = Duration::from_millis(10);

/// What a state word says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// [`EMPTY`].
    Empty,
    /// [`READY`].
    Ready,
    /// `INITIALIZING | token`, with a token some process may hold.
    Initializing { token: u32 },
    /// Anything else: no process writes it.
    Invalid,
}

/// Decodes a state word.
pub(crate) fn decode(word: u32) -> State {
    match word {
        EMPTY => State::Empty,
        READY => State::Ready,
        w if w & INITIALIZING != 0 && w & !INITIALIZING != 0 && w & !INITIALIZING <= TOKEN_MASK => {
            State::Initializing {
                token: w & !INITIALIZING,
            }
        }
        _ => State::Invalid,
    }
}

/// The state word of the calling process initialising.
pub(crate) fn initializing_by_me() -> u32 {
    INITIALIZING | liveness::me().token
}

/// Whether the initialiser named by `token` is certainly dead: its work will never finish.
pub(crate) fn initialiser_is_dead(token: u32) -> bool {
    liveness::judge(token) == Verdict::Dead
}

/// Stores `state` (Release) and wakes every process waiting on the word.
pub(crate) fn publish(word: &AtomicU32, state: u32) {
    word.store(state, Ordering::Release);
    #[cfg(target_os = "linux")]
    crate::sync::native::word::wake_all(word);
}

/// Sleeps while `word` still holds `seen`, until woken, `until`, or a short recheck interval
/// (the initialiser may die without waking anyone).
pub(crate) fn wait_for_change(word: &AtomicU32, seen: u32, until: Option<Deadline>) {
    let recheck = Deadline::after(RECHECK).expect("10 ms fits in a timespec");
    #[cfg(target_os = "linux")]
    crate::sync::native::word::wait(word, seen, Some(recheck.earlier(until)));
    #[cfg(not(target_os = "linux"))]
    {
        // No portable address-wait exists outside Linux; initialisation takes microseconds.
        let _ = (word, seen, until, recheck);
        std::thread::sleep(Duration::from_micros(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_decode() {
        assert_eq!(decode(0), State::Empty);
        assert_eq!(decode(1), State::Ready);
        assert_eq!(decode(INITIALIZING | 7), State::Initializing { token: 7 });
        for invalid in [2, INITIALIZING, INITIALIZING | (TOKEN_MASK + 1), u32::MAX] {
            assert_eq!(decode(invalid), State::Invalid, "{invalid:#x}");
        }
    }
}
