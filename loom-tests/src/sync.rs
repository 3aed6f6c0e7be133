//! The loom flavour of shmsync's `sync` module: the same names, backed by loom.
//!
//! - [`AtomicU32`] wraps a loom atomic created on first use, so that `const INIT` items
//!   still compile; every access is a loom operation.
//! - [`futex`] emulates shared futexes with one loom mutex and condvar over a table of
//!   sleepers, as vasi-sync does: the value check and the enqueue happen under the table
//!   lock, which every wake takes too.
//! - [`Deadline`] is simulated. Deadlines made by a model ([`Deadline::user`]) may pass at
//!   any moment: a wait on one returns `TimedOut` at once unless the word already changed.
//!   Deadlines the algorithm makes from [`Deadline::now`] (its liveness-check schedule) never
//!   pass on their own: a wait on one sleeps until woken, or until some simulated process has
//!   died. So a lost wake-up is a deadlock that loom reports, and a death is always noticed.
//! - [`process`] is a liveness oracle: each model thread plays a process
//!   ([`process::enter`]) and may die holding locks ([`process::die`]).

use std::sync::OnceLock;
use std::time::Duration;

pub use std::sync::atomic::Ordering;

/// A loom `AtomicU32` that can be built in a `const`.
pub struct AtomicU32 {
    init: u32,
    cell: OnceLock<loom::sync::atomic::AtomicU32>,
}

impl AtomicU32 {
    pub const fn new(v: u32) -> Self {
        AtomicU32 {
            init: v,
            cell: OnceLock::new(),
        }
    }
    fn get(&self) -> &loom::sync::atomic::AtomicU32 {
        self.cell
            .get_or_init(|| loom::sync::atomic::AtomicU32::new(self.init))
    }
    pub fn load(&self, o: Ordering) -> u32 {
        self.get().load(o)
    }
    pub fn store(&self, v: u32, o: Ordering) {
        self.get().store(v, o)
    }
    pub fn swap(&self, v: u32, o: Ordering) -> u32 {
        self.get().swap(v, o)
    }
    pub fn fetch_add(&self, v: u32, o: Ordering) -> u32 {
        self.get().fetch_add(v, o)
    }
    pub fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        self.get().compare_exchange(current, new, success, failure)
    }
}

/// No spinning under loom: spinning only re-reads the word, and would multiply the states.
pub struct SpinWait;

impl SpinWait {
    pub fn new() -> Self {
        SpinWait
    }
    pub fn spin(&mut self) -> bool {
        false
    }
}

impl Default for SpinWait {
    fn default() -> Self {
        SpinWait
    }
}

loom::lazy_static! {
    /// The simulated CLOCK_MONOTONIC, in milliseconds; moves only when a model deadline passes.
    static ref CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
}

/// A simulated absolute deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: u64,
    /// Made by a model (may pass at any time) rather than by the algorithm's schedule.
    user: bool,
}

impl Deadline {
    /// A deadline `ms` simulated milliseconds from the start, which may pass at any moment.
    pub fn user(ms: u64) -> Deadline {
        Deadline { at: ms, user: true }
    }
    pub fn now() -> Deadline {
        Deadline {
            at: CLOCK.load(Ordering::Relaxed),
            user: false,
        }
    }
    pub fn plus(self, d: Duration) -> Option<Deadline> {
        Some(Deadline {
            at: self.at + d.as_millis() as u64,
            user: self.user,
        })
    }
    pub fn passed(self) -> bool {
        CLOCK.load(Ordering::Relaxed) >= self.at
    }
    /// A model deadline wins over a schedule deadline: only it can pass by itself.
    pub fn min(self, other: Option<Deadline>) -> Deadline {
        match other {
            Some(o) if o.user && (!self.user || o.at < self.at) => o,
            Some(o) if !self.user && !o.user && o.at < self.at => o,
            _ => self,
        }
    }
    fn expire(self) {
        CLOCK.fetch_max(self.at, Ordering::Relaxed);
    }
}

pub mod futex {
    //! Futex wait and wake emulated with a loom mutex and condvar.
    use super::{AtomicU32, Deadline, Ordering};
    use loom::sync::{Condvar, Mutex};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Wake {
        Woken,
        TimedOut,
    }

    /// The sleepers and the dead, guarded by one lock.
    #[derive(Default)]
    pub(crate) struct Table {
        next_ticket: u64,
        /// (address of the word, ticket) of every sleeper.
        sleepers: Vec<(usize, u64)>,
        /// Tickets woken but not yet returned.
        woken: Vec<u64>,
        /// Bit `pid` set once simulated process `pid` has died.
        pub(crate) dead: u64,
    }

    loom::lazy_static! {
        pub(crate) static ref TABLE: (Mutex<Table>, Condvar) =
            (Mutex::new(Table::default()), Condvar::new());
    }

    fn key(word: &AtomicU32) -> usize {
        word as *const AtomicU32 as usize
    }

    pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> Wake {
        let (lock, cv) = &*TABLE;
        let mut table = lock.lock().unwrap();
        if word.load(Ordering::Relaxed) != expected {
            return Wake::Woken;
        }
        match deadline {
            Some(d) if d.user => {
                d.expire();
                return Wake::TimedOut;
            }
            Some(_) if table.dead != 0 => return Wake::TimedOut,
            _ => {}
        }
        let ticket = table.next_ticket;
        table.next_ticket += 1;
        table.sleepers.push((key(word), ticket));
        loop {
            table = cv.wait(table).unwrap();
            if let Some(i) = table.woken.iter().position(|&t| t == ticket) {
                table.woken.swap_remove(i);
                return Wake::Woken;
            }
            if deadline.is_some() && table.dead != 0 {
                table.sleepers.retain(|&(_, t)| t != ticket);
                return Wake::TimedOut;
            }
        }
    }

    pub fn wake(word: &AtomicU32, count: i32) -> usize {
        let (lock, cv) = &*TABLE;
        let mut table = lock.lock().unwrap();
        let mut woken = 0;
        while woken < count as usize {
            let Some(i) = table.sleepers.iter().position(|&(k, _)| k == key(word)) else {
                break;
            };
            let (_, ticket) = table.sleepers.remove(i);
            table.woken.push(ticket);
            woken += 1;
        }
        if woken > 0 {
            cv.notify_all();
        }
        woken
    }

    pub fn wake_one(word: &AtomicU32) -> bool {
        wake(word, 1) > 0
    }

    pub fn wake_all(word: &AtomicU32) {
        wake(word, i32::MAX);
    }
}

pub mod process {
    //! A simulated process table: each model thread plays one process.
    use std::cell::Cell;

    pub const PID_BITS: u32 = 22;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Identity {
        pub pid: u32,
        pub start: u32,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Probe {
        Dead,
        Alive { start: u32 },
        Unknown,
    }

    loom::thread_local! {
        static ME: Cell<u32> = Cell::new(0);
    }

    /// The simulated start time of process `pid`.
    pub fn start_of(pid: u32) -> u32 {
        1000 + 37 * pid
    }

    /// Makes the calling model thread play process `pid` (1..=63).
    pub fn enter(pid: u32) {
        assert!((1..64).contains(&pid));
        ME.with(|me| me.set(pid));
    }

    pub fn current() -> Identity {
        let pid = ME.with(Cell::get);
        assert_ne!(pid, 0, "a model thread must call process::enter first");
        Identity {
            pid,
            start: start_of(pid),
        }
    }

    /// The calling thread's process dies: every check-schedule sleeper wakes to probe.
    pub fn die() {
        let pid = current().pid;
        let (lock, cv) = &*super::futex::TABLE;
        lock.lock().unwrap().dead |= 1 << pid;
        cv.notify_all();
    }

    pub fn probe(pid: u32) -> Probe {
        let (lock, _) = &*super::futex::TABLE;
        if pid == 0 || pid >= 64 || lock.lock().unwrap().dead & (1 << pid) != 0 {
            Probe::Dead
        } else {
            Probe::Alive {
                start: start_of(pid),
            }
        }
    }
}
