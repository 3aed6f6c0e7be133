//! A semaphore shared by model threads, with a count of the permits held right now; shared
//! by the semaphore models and the seeded-bug model.

use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use shmsync::ShmSemaphore;

/// A semaphore and a count of the permits held right now.
pub struct Pool {
    pub sem: ShmSemaphore,
    inside: AtomicU32,
    permits: u32,
}

impl Pool {
    pub fn new(permits: u32) -> Arc<Pool> {
        Arc::new(Pool {
            sem: ShmSemaphore::new(permits),
            inside: AtomicU32::new(0),
            permits,
        })
    }

    /// Takes a permit, checks that no more than `permits` are held, gives it back.
    pub fn visit(&self) {
        self.hold(self.sem.acquire());
    }

    /// As [`visit`](Self::visit) with `try_acquire`; does nothing when there is no permit.
    pub fn try_visit(&self) {
        if let Some(permit) = self.sem.try_acquire() {
            self.hold(permit);
        }
    }

    fn hold(&self, permit: shmsync::ShmSemaphorePermit<'_>) {
        let before = self.inside.fetch_add(1, Ordering::SeqCst);
        assert!(
            before < self.permits,
            "{} holders of {} permits",
            before + 1,
            self.permits
        );
        self.inside.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
    }

    /// Once every holder is gone: `try_acquire` gives back what dead holders kept, so every
    /// permit is there again, and none more.
    pub fn expect_all_back(&self) {
        let permits: Vec<_> = (0..self.permits).map(|_| self.sem.try_acquire()).collect();
        assert!(permits.iter().all(Option::is_some), "a permit was lost");
        assert!(self.sem.try_acquire().is_none(), "a permit was made up");
        drop(permits);
        assert_eq!(self.sem.available_permits(), self.permits);
    }

    /// Takes a permit and dies holding it.
    pub fn die_holding(&self) {
        std::mem::forget(self.sem.acquire());
        shmsync::loom::die();
    }
}

/// Spawns a model thread, a simulated process of its own.
pub fn spawn(p: &Arc<Pool>, f: impl FnOnce(&Pool) + Send + 'static) -> thread::JoinHandle<()> {
    let p = p.clone();
    thread::spawn(move || f(&p))
}

/// One holder dies with the only permit; then two survivors race to give it back (both in
/// `try_acquire`, which reclaims at once) and take it.
pub fn two_survivors_of_a_dead_holder() {
    let pool = Pool::new(1);
    spawn(&pool, Pool::die_holding).join().unwrap();
    let other = spawn(&pool, Pool::try_visit);
    pool.try_visit();
    other.join().unwrap();
    pool.expect_all_back();
}

/// A holder that is alive keeps its permit while another process tries to take one.
pub fn a_live_holder_and_a_trier() {
    let pool = Pool::new(1);
    let holder = spawn(&pool, Pool::visit);
    pool.try_visit();
    holder.join().unwrap();
    pool.expect_all_back();
}
