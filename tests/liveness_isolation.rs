//! Owner liveness across isolation boundaries, on both backends: a holder that is alive is
//! never robbed, however little of it the waiter can see (another PID namespace, no `/proc`,
//! `hidepid=2` with another user), and a holder that dies or `exec`s is seen dead.
//!
//! Holder and waiter are this test binary, spawned as unrelated processes (through `unshare`
//! and `mount` where a row needs it) that share one named segment. Rows whose setup cannot be
//! made here (no `unshare`, not root) are skipped with a printed reason.
//!
//! The binary has its own `main` (`harness = false`): a spawned role runs on the main thread,
//! as a real program's would. The kernel walks a thread's robust list at `exec` under the
//! thread's new TID, so a pthread lock taken by any thread but the main one is not released
//! by an `exec` (the futex backend's liveness lock is: it belongs to the process).

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::TryLockError;
use std::time::Duration;

use shmsync::generic::{RawMutex, ShmMutex};
use shmsync::{ShmOptions, ShmSafe};

/// What the holder and the waiter share.
#[derive(ShmSafe)]
#[repr(C)]
struct Arena<R: RawMutex> {
    lock: ShmMutex<u64, R>,
    /// 1 once the holder holds the lock.
    ready: AtomicU32,
    /// 1 while the holder is inside its critical section.
    inside: AtomicU32,
    /// What the holder does next: [`RELEASE`], [`DIE`] or [`EXEC`].
    go: AtomicU32,
    /// Set by the test right before it lets the holder die or exec.
    ending: AtomicU32,
    /// 1 once the waiter's bounded attempt came back empty-handed.
    blocked: AtomicU32,
    /// The waiter's result: [`CLEAN`], [`POISONED`] or [`TIMED_OUT`].
    outcome: AtomicU32,
    /// Critical sections the waiter entered while a live holder was inside its own.
    overlaps: AtomicU32,
    /// CLOCK_MONOTONIC (ns) right before the holder dies or execs, and when the waiter got in.
    ending_at: AtomicU64,
    acquired_at: AtomicU64,
}

const RELEASE: u32 = 1;
const DIE: u32 = 2;
const EXEC: u32 = 3;

const CLEAN: u32 = 1;
const POISONED: u32 = 2;
const TIMED_OUT: u32 = 3;

/// The waiter's bounded first attempt, while the holder is alive for sure: the old PID probe
/// robbed after 1 ms, so this spans many liveness checks.
const LIVE_WINDOW: Duration = Duration::from_millis(300);
/// How long anything here may take before the test calls it hung.
const PATIENCE: Duration = Duration::from_secs(30);

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Environment variables that tell a spawned copy of this binary what to do.
const BACKEND_VAR: &str = "SHMSYNC_LIVENESS_BACKEND";
const NAME_VAR: &str = "SHMSYNC_LIVENESS_SEGMENT";
const UID_VAR: &str = "SHMSYNC_LIVENESS_UID";

/// Where a role runs.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// Beside the test, as an ordinary child.
    Here,
    /// In a PID namespace of its own, with its own `/proc`.
    OwnPidNamespace,
    /// With an empty tmpfs mounted over `/proc`.
    NoProc,
    /// As `uid`, behind a `/proc` mounted with `hidepid=2`.
    HidepidAs(u32),
    /// As `uid`, with the ordinary `/proc`.
    As(u32),
}

/// The command that runs `role` of this binary at `place`.
fn command(place: Place, role: &str, backend: &str, name: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = match place {
        Place::Here | Place::As(_) => Command::new(&exe),
        Place::OwnPidNamespace => {
            // A shell is the namespace's init, so that the role is an ordinary process there
            // (init ignores even SIGKILL from inside its own namespace).
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc"])
                .args(["sh", "-c", "\"$0\" \"$@\"; exit $?"])
                .arg(&exe);
            c
        }
        Place::NoProc | Place::HidepidAs(_) => {
            let mount = match place {
                Place::NoProc => "mount -t tmpfs none /proc",
                _ => "mount -t proc -o hidepid=2 proc /proc",
            };
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!("{mount} && exec \"$0\" \"$@\""))
                .arg(&exe);
            c
        }
    };
    cmd.env(common::ROLE_VAR, role)
        .env(BACKEND_VAR, backend)
        .env(NAME_VAR, name);
    if let Place::As(uid) | Place::HidepidAs(uid) = place {
        cmd.env(UID_VAR, uid.to_string());
    }
    cmd
}

/// Why this machine cannot run rows at `place`, if it cannot.
fn unavailable(place: Place) -> Option<String> {
    let probe = match place {
        Place::Here => return None,
        Place::As(_) => {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            return (!root).then(|| "not root".into());
        }
        Place::OwnPidNamespace => "unshare --pid --fork --mount-proc true",
        Place::NoProc => "unshare --mount --propagation private sh -c 'mount -t tmpfs none /proc'",
        Place::HidepidAs(_) => {
            "unshare --mount --propagation private sh -c 'mount -t proc -o hidepid=2 proc /proc'"
        }
    };
    match Command::new("sh").args(["-c", probe]).status() {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`{probe}` failed ({s})")),
        Err(e) => Some(format!("`{probe}` could not run: {e}")),
    }
}

/// Runs a spawned copy's role, or else every test, printing libtest-style lines.
fn main() {
    if let Some(role) = common::role() {
        role_entry(&role);
    }
    let tests: [(&str, fn()); 2] = [
        (
            "futex_owner_liveness_across_isolation_boundaries",
            futex_owner_liveness_across_isolation_boundaries,
        ),
        (
            "pthread_owner_liveness_across_isolation_boundaries",
            pthread_owner_liveness_across_isolation_boundaries,
        ),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<_> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, body) in &chosen {
        let ok = std::panic::catch_unwind(body).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    let passed = chosen.len() - failed.len();
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out\n",
        failed.len(),
        tests.len() - chosen.len()
    );
    std::process::exit(i32::from(!failed.is_empty()));
}

/// Plays the role a spawned copy of this binary was started for, then exits.
fn role_entry(role: &str) -> ! {
    if let Ok(uid) = std::env::var(UID_VAR) {
        let uid: u32 = uid.parse().unwrap();
        // SAFETY: these change only this process's credentials, before it touches anything
        // shared.
        let ok = unsafe {
            libc::setgroups(0, core::ptr::null()) == 0
                && libc::setgid(uid) == 0
                && libc::setuid(uid) == 0
        };
        assert!(ok, "could not become uid {uid}");
    }
    let name = std::env::var(NAME_VAR).unwrap();
    let code = match std::env::var(BACKEND_VAR).unwrap().as_str() {
        "futex" => play::<<Futex as Backend>::R>(role, &name),
        "pthread" => play::<<Pthread as Backend>::R>(role, &name),
        other => panic!("unknown backend {other}"),
    };
    std::process::exit(code);
}

use common::backends::{Backend, Futex, Pthread};

/// Plays `role` on the segment `name` with the backend `R`.
fn play<R: RawMutex>(role: &str, name: &str) -> i32 {
    // Mode 0666: the rows with other users need it.
    let arena = ShmOptions::new()
        .trust_owner(0)
        .allow_group_or_other_write(true)
        .open::<Arena<R>>(name)
        .expect("open the arena");
    match role {
        "holder" => hold(&arena),
        "waiter" => wait(&arena),
        other => panic!("unknown role {other}"),
    }
}

/// Holds the lock until told to release it, die or exec.
fn hold<R: RawMutex>(a: &Arena<R>) -> i32 {
    let guard = a.lock.lock().expect("a clean lock");
    a.inside.store(1, SeqCst);
    a.ready.store(1, SeqCst);
    if !common::wait_until(PATIENCE * 2, || a.go.load(SeqCst) != 0) {
        return 9;
    }
    match a.go.load(SeqCst) {
        RELEASE => {
            a.inside.store(0, SeqCst);
            drop(guard);
            0
        }
        DIE => {
            a.ending_at.store(now_ns(), SeqCst);
            // SAFETY: raise only sends a signal to this process.
            unsafe { libc::raise(libc::SIGKILL) };
            8
        }
        EXEC => {
            a.ending_at.store(now_ns(), SeqCst);
            // The new image lives on with the lock still "held" by the old one.
            let err = Command::new("sleep").arg("60").exec();
            panic!("exec failed: {err}");
        }
        _ => 7,
    }
}

/// Tries for a bounded time while the holder is surely alive (must fail), then waits.
fn wait<R: RawMutex>(a: &Arena<R>) -> i32 {
    let enter = |poisoned: bool| {
        if a.inside.load(SeqCst) == 1 && a.ending.load(SeqCst) == 0 {
            a.overlaps.fetch_add(1, SeqCst);
        }
        a.acquired_at.store(now_ns(), SeqCst);
        a.outcome
            .store(if poisoned { POISONED } else { CLEAN }, SeqCst);
    };
    match a.lock.try_lock_for(LIVE_WINDOW) {
        Err(TryLockError::WouldBlock) => a.blocked.store(1, SeqCst),
        Ok(_) => {
            enter(false);
            return 0;
        }
        Err(TryLockError::Poisoned(_)) => {
            enter(true);
            return 0;
        }
    }
    match a.lock.try_lock_for(PATIENCE) {
        Ok(_) => enter(false),
        Err(TryLockError::Poisoned(_)) => enter(true),
        Err(TryLockError::WouldBlock) => a.outcome.store(TIMED_OUT, SeqCst),
    }
    0
}

/// Runs one row: holder at `holder_at`, waiter at `waiter_at`; the holder then does `end`.
/// Returns the detection time for DIE and EXEC.
fn row<R: RawMutex>(backend: &str, holder_at: Place, waiter_at: Place, end: u32) -> Option<Duration>
where
    ShmMutex<u64, R>: ShmSafe,
{
    for place in [holder_at, waiter_at] {
        if let Some(why) = unavailable(place) {
            println!("skipped: {place:?} is unavailable here: {why}");
            return None;
        }
    }
    let name = common::unique_name("liveness");
    let _unlink = Unlink(name.clone());
    let arena = ShmOptions::new()
        .mode(0o666)
        .create(
            &name,
            Arena::<R> {
                lock: ShmMutex::new(0),
                ready: AtomicU32::new(0),
                inside: AtomicU32::new(0),
                go: AtomicU32::new(0),
                ending: AtomicU32::new(0),
                blocked: AtomicU32::new(0),
                outcome: AtomicU32::new(0),
                overlaps: AtomicU32::new(0),
                ending_at: AtomicU64::new(0),
                acquired_at: AtomicU64::new(0),
            },
        )
        .expect("create the arena");
    let holder = Spawned(
        command(holder_at, "holder", backend, &name)
            .spawn()
            .unwrap(),
    );
    assert!(
        common::wait_until(PATIENCE, || arena.ready.load(SeqCst) == 1),
        "the holder never took the lock"
    );
    let waiter = Spawned(
        command(waiter_at, "waiter", backend, &name)
            .spawn()
            .unwrap(),
    );
    assert!(
        common::wait_until(PATIENCE, || arena.blocked.load(SeqCst) == 1
            || arena.outcome.load(SeqCst) != 0),
        "the waiter never finished its first attempt"
    );
    assert_eq!(
        arena.outcome.load(SeqCst),
        0,
        "{backend}: a live holder ({holder_at:?}) was robbed by a waiter ({waiter_at:?})"
    );
    if end != RELEASE {
        arena.ending.store(1, SeqCst);
    }
    arena.go.store(end, SeqCst);
    assert_eq!(waiter.finish(), Some(0), "the waiter failed");
    let outcome = arena.outcome.load(SeqCst);
    assert_eq!(
        arena.overlaps.load(SeqCst),
        0,
        "overlapping critical sections"
    );
    let holder_alive = holder.is_running();
    match end {
        RELEASE => {
            assert_eq!(
                outcome, CLEAN,
                "{backend}: a released lock came back poisoned"
            );
            assert_eq!(holder.finish(), Some(0), "the holder failed");
            None
        }
        _ => {
            assert_eq!(
                outcome, POISONED,
                "{backend}: the holder's death ({holder_at:?}) went unseen by {waiter_at:?}"
            );
            if end == EXEC {
                assert!(holder_alive, "the exec'd holder should still be running");
            }
            let took = arena.acquired_at.load(SeqCst) - arena.ending_at.load(SeqCst);
            Some(Duration::from_nanos(took))
        }
    }
}

/// A spawned process, SIGKILLed and reaped when dropped.
struct Spawned(Child);

impl Spawned {
    fn is_running(&self) -> bool {
        let pidfd = common::pidfd_open(self.0.id() as libc::pid_t);
        !common::poll_exited(&pidfd, Duration::ZERO)
    }

    fn finish(mut self) -> Option<i32> {
        let pidfd = common::pidfd_open(self.0.id() as libc::pid_t);
        assert!(
            common::poll_exited(&pidfd, PATIENCE),
            "spawned process {} hung",
            self.0.id()
        );
        self.0.wait().expect("wait").code()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Unlinks a segment when dropped.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = shmsync::ShmBox::<u8>::unlink(&self.0);
    }
}

/// Every row of the isolation table for the backend `R`.
fn table<R: RawMutex>(backend: &str)
where
    ShmMutex<u64, R>: ShmSafe,
{
    use Place::*;
    let rows: [(&str, Place, Place, u32); 9] = [
        ("same namespace, released", Here, Here, RELEASE),
        ("same namespace, holder killed", Here, Here, DIE),
        (
            "waiter in its own PID namespace, released",
            Here,
            OwnPidNamespace,
            RELEASE,
        ),
        (
            "waiter in its own PID namespace, holder killed",
            Here,
            OwnPidNamespace,
            DIE,
        ),
        (
            "holder in its own PID namespace, killed",
            OwnPidNamespace,
            Here,
            DIE,
        ),
        ("waiter without /proc, holder killed", Here, NoProc, DIE),
        (
            "waiter behind hidepid=2 as another user",
            As(1001),
            HidepidAs(1002),
            DIE,
        ),
        ("holder execs with the lock held", Here, Here, EXEC),
        (
            "holder in its own PID namespace execs",
            OwnPidNamespace,
            Here,
            EXEC,
        ),
    ];
    for (what, holder_at, waiter_at, end) in rows {
        if let Some(took) = row::<R>(backend, holder_at, waiter_at, end) {
            println!("{backend}: {what}: seen dead after {took:?}");
        }
    }
}

fn futex_owner_liveness_across_isolation_boundaries() {
    table::<<Futex as Backend>::R>("futex");
}

fn pthread_owner_liveness_across_isolation_boundaries() {
    table::<<Pthread as Backend>::R>("pthread");
}
