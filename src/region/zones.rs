//! The address ranges in which the pthread backend sets up robust mutexes.
//!
//! glibc links every robust mutex a thread holds into that thread's robust list, through
//! pointers stored inside the mutexes, and writes through them until the mutex is unlocked —
//! for good, if its guard was leaked with `mem::forget` (the kernel walks the list too, when
//! the thread exits). A robust mutex is therefore sound only in memory that stays mapped while
//! a list may point into it. shmsync can promise that for memory whose unmapping it controls:
//! a `ShmBox` keeps its mapping when a list still points into it, and a raw `ShmRef` placement
//! aborts the process rather than let its memory go. Those register their range here for as
//! long as they live, and the pthread backend asks [`contains`] once per mutex, when it
//! initialises it: robust inside a registered range, process-shared but not robust elsewhere
//! (the stack, the heap, memory mapped by other means), where glibc never lists it.
//!
//! The table takes no lock, so that a `fork` while another thread registers cannot leave the
//! child waiting for a thread it does not have. It is a list of chunks of slots that are never
//! freed; each slot is a small sequence lock:
//!
//! ```text
//! FREE(g) ──CAS (claim)──▶ BUSY(g) ──write range, store──▶ LIVE(g) ──store (release)──▶ FREE(g+1)
//! ```
//!
//! Notes about memory ordering: a claimer writes the range after a Release fence that follows
//! its CAS, and publishes `LIVE` with a Release store. A reader loads the state (Acquire),
//! reads the range, issues an Acquire fence and loads the state again; it uses the range only
//! if both loads saw the same `LIVE` state, so a range being rewritten is never half-read. A
//! slot a `fork` caught in `BUSY` stays `BUSY` in the child: one slot lost, nothing blocked.

use core::ptr;
use core::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};

/// Slots per chunk.
const SLOTS: usize = 32;

/// Phase bits of a slot's state: nobody uses the slot.
const FREE: usize = 0;
/// Phase bits: the claimer is writing the range.
const BUSY: usize = 1;
/// Phase bits: the range is registered.
const LIVE: usize = 2;
/// The phase bits; the bits above count the slot's uses (its generation).
const PHASE: usize = 3;
/// One step of the generation.
const NEXT_GENERATION: usize = 4;

/// One registered range, or room for one.
struct Slot {
    /// Generation and phase.
    state: AtomicUsize,
    /// The first byte of the range.
    start: AtomicUsize,
    /// The range's length.
    len: AtomicUsize,
}

/// A chunk of slots; chunks are appended and never freed.
struct Chunk {
    slots: [Slot; SLOTS],
    next: AtomicPtr<Chunk>,
}

impl Chunk {
    const fn new() -> Chunk {
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: Slot = Slot {
            state: AtomicUsize::new(FREE),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
        };
        Chunk {
            slots: [EMPTY; SLOTS],
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// The first chunk; later ones hang off it.
static TABLE: Chunk = Chunk::new();

/// A registered range: the pthread backend sets up robust mutexes inside it until this drops.
pub(crate) struct Zone {
    slot: &'static Slot,
}

impl Zone {
    /// Registers `[start, start + len)`.
    pub(crate) fn register(start: usize, len: usize) -> Zone {
        let (slot, busy) = claim();
        // After the claim: a reader that sees these stores sees the claim too (see the notes).
        fence(Ordering::Release);
        slot.start.store(start, Ordering::Relaxed);
        slot.len.store(len, Ordering::Relaxed);
        // BUSY(g) => LIVE(g): publish.
        slot.state.store(busy - BUSY + LIVE, Ordering::Release);
        Zone { slot }
    }

    /// The registered range: its first byte and its length.
    pub(crate) fn range(&self) -> (usize, usize) {
        (
            self.slot.start.load(Ordering::Relaxed),
            self.slot.len.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Zone {
    fn drop(&mut self) {
        let live = self.slot.state.load(Ordering::Relaxed);
        // LIVE(g) => FREE(g+1): a reader that saw LIVE(g) sees the change and skips the range.
        self.slot
            .state
            .store((live & !PHASE) + NEXT_GENERATION + FREE, Ordering::Release);
    }
}

/// A zone in memory that shmsync only borrows (a raw `ShmRef` placement), which its owner may
/// unmap once the zone is gone: dropping it aborts the process if a robust list may still
/// point into the range and no other zone covers it, since glibc would then write into
/// whatever is mapped there next.
pub(crate) struct BorrowedZone(Option<Zone>);

impl BorrowedZone {
    /// Registers `[start, start + len)`, or nothing where robust lists cannot be read (the
    /// drop could never tell that none points into the range; mutexes there are not robust).
    pub(crate) fn register(start: usize, len: usize) -> BorrowedZone {
        BorrowedZone(super::robust::LISTS_READABLE.then(|| Zone::register(start, len)))
    }
}

impl Drop for BorrowedZone {
    fn drop(&mut self) {
        let Some(zone) = self.0.take() else {
            return;
        };
        let (start, len) = zone.range();
        drop(zone);
        if covers(start, len) || !super::robust::may_be_listed(start, len) {
            return;
        }
        eprintln!(
            "shmsync: a ShmRef holding pthread-backend mutexes at {start:#x}..{:#x} is dropped \
             while a thread's robust list still points into it (a guard leaked with \
             mem::forget?); its memory may be unmapped next, and glibc would then write into \
             whatever is mapped there. Aborting.",
            start + len
        );
        std::process::abort();
    }
}

crate::sync::native_only! {
    /// Whether `addr` lies in a registered range (for the pthread backend).
    pub(crate) fn contains(addr: usize) -> bool {
        any_live(|start, len| addr >= start && addr - start < len)
    }
}

/// Whether a registered range covers all of `[start, start + len)`.
pub(crate) fn covers(start: usize, len: usize) -> bool {
    any_live(|s, l| start >= s && start - s <= l && len <= l - (start - s))
}

/// Whether some registered range satisfies `hit(start, len)`.
fn any_live(hit: impl Fn(usize, usize) -> bool) -> bool {
    chunks().any(|chunk| {
        chunk.slots.iter().any(|slot| {
            let before = slot.state.load(Ordering::Acquire);
            if before & PHASE != LIVE {
                return false;
            }
            let (start, len) = (
                slot.start.load(Ordering::Relaxed),
                slot.len.load(Ordering::Relaxed),
            );
            fence(Ordering::Acquire);
            slot.state.load(Ordering::Relaxed) == before && hit(start, len)
        })
    })
}

/// Every chunk, the static one first.
fn chunks() -> impl Iterator<Item = &'static Chunk> {
    core::iter::successors(Some(&TABLE), |chunk| {
        // SAFETY: chunks are leaked boxes, never freed, published with a Release CAS.
        unsafe { chunk.next.load(Ordering::Acquire).as_ref() }
    })
}

/// Claims a free slot (FREE(g) => BUSY(g)), adding a chunk when all are taken; returns the
/// slot and its `BUSY` state.
fn claim() -> (&'static Slot, usize) {
    for slot in chunks().flat_map(|chunk| chunk.slots.iter()) {
        let state = slot.state.load(Ordering::Relaxed);
        // FREE(g) => BUSY(g)
        if state & PHASE == FREE
            && slot
                .state
                .compare_exchange(state, state + BUSY, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return (slot, state + BUSY);
        }
    }
    let fresh: &'static Chunk = Box::leak(Box::new(Chunk::new()));
    // Unpublished yet: FREE(0) => BUSY(0) needs no CAS.
    fresh.slots[0].state.store(BUSY, Ordering::Relaxed);
    let mut last = chunks().last().expect("the static chunk");
    // null => fresh, at the tail; another claimer may have appended first.
    while let Err(next) = last.next.compare_exchange(
        ptr::null_mut(),
        fresh as *const Chunk as *mut Chunk,
        Ordering::Release,
        Ordering::Acquire,
    ) {
        // SAFETY: as in `chunks`.
        last = unsafe { &*next };
    }
    (&fresh.slots[0], BUSY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_found_until_their_zone_drops() {
        // Addresses no real mapping uses, so that other tests' zones cannot interfere.
        let base = usize::MAX - (1 << 20);
        let zone = Zone::register(base, 4096);
        assert_eq!(zone.range(), (base, 4096));
        assert!(contains(base) && contains(base + 4095));
        assert!(!contains(base + 4096) && !contains(base - 1));
        assert!(covers(base + 8, 64) && covers(base, 4096));
        assert!(!covers(base + 4090, 64) && !covers(base - 8, 64));
        drop(zone);
        assert!(!contains(base));
    }

    #[test]
    fn many_zones_grow_the_table_and_free_their_slots() {
        let base = usize::MAX - (1 << 30);
        let zones: Vec<Zone> = (0..3 * SLOTS)
            .map(|i| Zone::register(base + i * 4096, 4096))
            .collect();
        assert!((0..3 * SLOTS).all(|i| contains(base + i * 4096 + 100)));
        drop(zones);
        assert!((0..3 * SLOTS).all(|i| !contains(base + i * 4096 + 100)));
    }

    #[test]
    fn concurrent_registrations_each_get_their_own_slot() {
        let base = usize::MAX - (1 << 40);
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..200 {
                        let start = base + (t * 1000 + i) * 64;
                        let zone = Zone::register(start, 64);
                        assert!(contains(start + 10));
                        drop(zone);
                    }
                });
            }
        });
    }
}
