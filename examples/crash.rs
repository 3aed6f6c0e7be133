//! A process dies holding the lock in the middle of an update; another process recovers.
//!
//! ```text
//! cargo run --example crash
//! ```
//!
//! The child takes the lock, writes the first half of a two-step update, and is SIGKILLed
//! before the second half. The parent's next `lock()` returns `Err(PoisonError)` carrying a
//! usable guard: it sees the torn update, repairs it, calls `clear_poison`, and carries on.
//! Exits non-zero if the death went unnoticed.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shmsync::{ShmBox, ShmMutex, ShmSafe};

#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: crash

A forked child takes a ShmMutex, writes half of a two-step update and is SIGKILLed holding the
lock. The parent's next lock() returns Err(PoisonError) carrying a usable guard: it repairs the
torn value and calls clear_poison. Ends with OK when the death was noticed and repaired.

Options:
  -h, --help          print this help
";

/// `checksum` must always equal `value * 3`: an update writes `value`, then `checksum`.
#[derive(ShmSafe)]
#[repr(C)]
struct Account {
    value: u64,
    checksum: u64,
}

#[derive(ShmSafe)]
#[repr(C)]
struct Shared {
    account: ShmMutex<Account>,
    /// Set by the child once it is half-way through its update.
    half_done: AtomicU32,
}

fn main() -> ExitCode {
    if let Err(code) = cli::parse("crash", USAGE, cli::no_options) {
        return code;
    }
    let shared = ShmBox::new(Shared {
        account: ShmMutex::new(Account {
            value: 10,
            checksum: 30,
        }),
        half_done: AtomicU32::new(0),
    })
    .expect("anonymous shared memory");

    // SAFETY: the child only uses shmsync primitives and dies by SIGKILL.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let mut account = shared.account.lock().expect("not poisoned");
        account.value = 11;
        shared.half_done.store(1, Ordering::Release);
        // SAFETY: raise only sends a signal to this process; SIGKILL ends it here.
        unsafe { libc::raise(libc::SIGKILL) };
        unreachable!("SIGKILL cannot be caught");
    }

    println!("parent: waiting for the child (pid {child}) to die holding the lock");
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let killed = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
    println!("parent: child ended by SIGKILL: {killed}");

    let attempt = shared.account.try_lock_for(Duration::from_secs(10));
    let mut account = match attempt {
        Ok(_) => {
            println!("FAILED: the lock was not poisoned by the holder's death");
            return ExitCode::FAILURE;
        }
        Err(std::sync::TryLockError::WouldBlock) => {
            println!("FAILED: the dead holder's lock was never released");
            return ExitCode::FAILURE;
        }
        Err(std::sync::TryLockError::Poisoned(poisoned)) => {
            println!("parent: lock() reported the owner's death (PoisonError)");
            poisoned.into_inner()
        }
    };
    let torn = account.checksum != account.value * 3;
    println!(
        "parent: value {} checksum {} -> {}",
        account.value,
        account.checksum,
        if torn {
            "torn, repairing"
        } else {
            "consistent"
        }
    );
    account.checksum = account.value * 3;
    drop(account);
    shared.account.clear_poison();

    let ok = shared
        .account
        .lock()
        .map(|a| a.checksum == a.value * 3)
        .unwrap_or(false);
    println!("parent: after clear_poison the lock is clean again: {ok}");
    if killed && torn && ok && shared.half_done.load(Ordering::Acquire) == 1 {
        println!(
            "OK: a holder's death poisoned the lock; the survivor repaired the data and cleared it"
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "FAILED: killed by SIGKILL {killed}, torn update seen {torn}, clean after repair {ok}"
        );
        ExitCode::FAILURE
    }
}
