//! Absolute deadlines on CLOCK_MONOTONIC.

use std::time::Duration;

/// A point in time on CLOCK_MONOTONIC, as the kernel's and libc's timed waits take it.
///
/// Only the crate makes these; the raw backend traits take them.
///
/// # Examples
///
/// ```
/// // Deadlines are made inside the crate from the `Duration`s the public API takes.
/// fn takes(_: Option<shmsync::generic::Deadline>) {}
/// takes(None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    secs: i64,
    nanos: i64,
}

impl Deadline {
    /// The current time on CLOCK_MONOTONIC.
    // time_t and c_long are narrower than i64 on some targets.
    #[allow(clippy::useless_conversion)]
    pub(crate) fn now() -> Deadline {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
        Deadline {
            secs: i64::from(ts.tv_sec),
            nanos: i64::from(ts.tv_nsec),
        }
    }

    /// `timeout` from now; `None` when that lies beyond what a timespec holds (wait forever).
    pub(crate) fn after(timeout: Duration) -> Option<Deadline> {
        Deadline::now().plus(timeout)
    }

    /// This deadline moved `d` later; `None` on overflow.
    pub(crate) fn plus(self, d: Duration) -> Option<Deadline> {
        let secs = i64::try_from(d.as_secs()).ok()?.checked_add(self.secs)?;
        let nanos = self.nanos + i64::from(d.subsec_nanos());
        let (secs, nanos) = if nanos >= 1_000_000_000 {
            (secs.checked_add(1)?, nanos - 1_000_000_000)
        } else {
            (secs, nanos)
        };
        // time_t may be 32 bits on some platforms.
        libc::time_t::try_from(secs).ok()?;
        Some(Deadline { secs, nanos })
    }

    /// Whether this deadline has passed.
    pub(crate) fn passed(self) -> bool {
        Deadline::now() >= self
    }

    /// The earlier of this deadline and `other` (`None` meaning never).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn earlier(self, other: Option<Deadline>) -> Deadline {
        match other {
            Some(o) if o < self => o,
            _ => self,
        }
    }

    /// This time in milliseconds, modulo 2^32: a coarse stamp that other processes of the
    /// same clock compare by wrapping difference.
    // Used by the futex condvar, which neither other Unixes nor the loom model build on it.
    #[allow(dead_code)]
    pub(crate) fn millis(self) -> u32 {
        (self.secs.wrapping_mul(1000) + self.nanos / 1_000_000) as u32
    }

    /// The deadline as a `timespec` for the kernel or libc.
    pub(crate) fn as_timespec(self) -> libc::timespec {
        libc::timespec {
            tv_sec: self.secs as libc::time_t,
            tv_nsec: self.nanos as _,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_mean_forever_and_nanos_carry() {
        assert_eq!(Deadline::after(Duration::MAX), None);
        let base = Deadline {
            secs: 5,
            nanos: 999_999_999,
        };
        let next = base.plus(Duration::from_nanos(2)).unwrap();
        assert_eq!((next.secs, next.nanos), (6, 1));
    }
}
