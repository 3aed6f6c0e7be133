//! Shared futex wait and wake, emulated with one loom mutex and condvar over a table of
//! sleepers, as vasi-sync does: the value check and the enqueue happen under the table lock,
//! which every wake takes too, so a wake that follows a change of the word is never lost.
//!
//! How a wait ends, by its deadline:
//!
//! - none: only when woken;
//! - a user deadline (see [`Deadline`]): at once with `TimedOut`, unless the word changed;
//! - a schedule deadline (the lock's liveness checks): once some simulated process has died,
//!   with `TimedOut` at once the first time this thread waits on this word with this value,
//!   and whenever a process has died since this thread's last such timeout; otherwise only
//!   when woken or when a process dies. Between two deaths a probe gives the same answer, so
//!   this never misses a death and never spins.

use std::cell::Cell;

use loom::sync::{Condvar, Mutex, MutexGuard};

use super::{AtomicU32, Deadline};
use crate::sync::{Ordering, Wake};

/// The sleepers and the dead, guarded by one lock.
#[derive(Default)]
pub(super) struct Table {
    next_ticket: u64,
    /// (address of the word, ticket, tags) of every sleeper, oldest first.
    sleepers: Vec<(usize, u64, u32)>,
    /// Tickets woken but not yet returned.
    woken: Vec<u64>,
    /// Bit `pid` set once simulated process `pid` has died.
    pub(super) dead: u64,
}

loom::lazy_static! {
    static ref TABLE: (Mutex<Table>, Condvar) = (Mutex::new(Table::default()), Condvar::new());
}

loom::thread_local! {
    /// The (word, value, dead set) of this thread's last schedule wait that timed out.
    static LAST_CHECK: Cell<Option<(usize, u32, u64)>> = Cell::new(None);
}

/// Runs `f` on the table, under its lock.
pub(super) fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    f(&mut lock())
}

/// Wakes every sleeper so that schedule sleepers see a new death.
pub(super) fn announce_death(pid: u32) {
    lock().dead |= 1 << pid;
    TABLE.1.notify_all();
}

fn lock() -> MutexGuard<'static, Table> {
    TABLE.0.lock().expect("the futex table is never poisoned")
}

fn key(word: &AtomicU32) -> usize {
    word as *const AtomicU32 as usize
}

/// Every tag: what [`wait`] sleeps with.
pub(crate) const ANY_TAG: u32 = u32::MAX;

/// Sleeps while `word` holds `expected`, until woken or `deadline` passes (see the module
/// docs for what passing means here).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Deadline>) -> Wake {
    wait_tagged(word, expected, deadline, ANY_TAG)
}

/// [`wait`], sleeping with the tags `tag`, which [`wake_tagged`] selects on.
pub(crate) fn wait_tagged(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Deadline>,
    tag: u32,
) -> Wake {
    let mut table = lock();
    // The kernel's full barrier before it reads the word (`smp_mb` in `futex_wait`), which
    // callers that count their sleepers rely on.
    loom::sync::atomic::fence(Ordering::SeqCst);
    if word.load(Ordering::Relaxed) != expected {
        return Wake::Early;
    }
    let check = (key(word), expected, table.dead);
    match deadline {
        Some(d) if d.user => {
            d.expire();
            return Wake::TimedOut;
        }
        Some(_) if table.dead != 0 && LAST_CHECK.with(Cell::get) != Some(check) => {
            LAST_CHECK.with(|last| last.set(Some(check)));
            return Wake::TimedOut;
        }
        _ => {}
    }
    let ticket = table.next_ticket;
    table.next_ticket += 1;
    table.sleepers.push((key(word), ticket, tag));
    loop {
        table = TABLE
            .1
            .wait(table)
            .expect("the futex table is never poisoned");
        if let Some(i) = table.woken.iter().position(|&t| t == ticket) {
            table.woken.swap_remove(i);
            return Wake::Woken;
        }
        if deadline.is_some() && table.dead != check.2 {
            table.sleepers.retain(|&(_, t, _)| t != ticket);
            LAST_CHECK.with(|last| last.set(Some((check.0, check.1, table.dead))));
            return Wake::TimedOut;
        }
    }
}

/// Wakes up to `count` waiters of `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, count: i32) -> usize {
    wake_tagged(word, count, ANY_TAG)
}

/// Wakes up to `count` waiters of `word` that sleep with one of the tags `tag`, oldest first;
/// returns how many were woken.
pub(crate) fn wake_tagged(word: &AtomicU32, count: i32, tag: u32) -> usize {
    wake_locked(&mut lock(), word, count, tag)
}

fn wake_locked(table: &mut Table, word: &AtomicU32, count: i32, tag: u32) -> usize {
    let mut woken = 0;
    while woken < count as usize {
        let Some(i) = table
            .sleepers
            .iter()
            .position(|&(k, _, t)| k == key(word) && t & tag != 0)
        else {
            break;
        };
        let (_, ticket, _) = table.sleepers.remove(i);
        table.woken.push(ticket);
        woken += 1;
    }
    if woken > 0 {
        TABLE.1.notify_all();
    }
    woken
}

/// Wakes one waiter of `word`; returns whether one was woken.
pub(crate) fn wake_one(word: &AtomicU32) -> bool {
    wake(word, 1) > 0
}

/// Wakes every waiter of `word`; returns how many were woken.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX)
}
