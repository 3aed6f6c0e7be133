//! The classic System V pattern: an `ftok` key, `shmget`, a parent and a child sharing a
//! struct under a `ShmMutex`, and `IPC_RMID` at the end.
//!
//! ```text
//! cargo run --example sysv -- --iterations 100000
//! ```

use std::process::ExitCode;

use shmsync::{ShmBox, ShmMutex, ShmSafe, SysvKey};

#[derive(ShmSafe)]
#[repr(C)]
struct Stats {
    parent: u64,
    child: u64,
}

fn main() -> ExitCode {
    let iterations: u64 = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .map_or(100_000, |v| v.parse().expect("--iterations takes a number"));

    // A key derived from a file both sides know (here: a private temp file) and a project id.
    let key_file = std::env::temp_dir().join(format!("shmsync-sysv-{}", std::process::id()));
    std::fs::write(&key_file, b"ftok anchor").expect("temp file");
    let key = SysvKey::ftok(&key_file, b'S').expect("ftok");
    println!("ftok({}, 'S') = {key:?}", key_file.display());

    let stats = ShmBox::sysv_create(
        key,
        ShmMutex::new(Stats {
            parent: 0,
            child: 0,
        }),
    )
    .expect("shmget(IPC_CREAT | IPC_EXCL)");
    println!(
        "System V segment id {}",
        stats.sysv_id().expect("a System V box")
    );

    // SAFETY: the child attaches the segment again by key, updates it, and `_exit`s.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let code = match ShmBox::<ShmMutex<Stats>>::sysv_open(key) {
            Ok(mine) => {
                for _ in 0..iterations {
                    mine.lock().expect("not poisoned").child += 1;
                }
                0
            }
            Err(e) => {
                eprintln!("child: sysv_open: {e}");
                1
            }
        };
        // SAFETY: ends the child without returning into main.
        unsafe { libc::_exit(code) };
    }
    for _ in 0..iterations {
        stats.lock().expect("not poisoned").parent += 1;
    }
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let child_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;

    let (parent, child_count) = {
        let s = stats.lock().expect("not poisoned");
        (s.parent, s.child)
    };
    println!("parent updates: {parent}, child updates: {child_count} (expected {iterations} each)");
    stats.sysv_remove().expect("IPC_RMID");
    let gone = ShmBox::<ShmMutex<Stats>>::sysv_open(key).is_err();
    println!("after IPC_RMID the key no longer opens: {gone}");
    let _ = std::fs::remove_file(&key_file);
    if child_ok && parent == iterations && child_count == iterations && gone {
        println!("OK");
        ExitCode::SUCCESS
    } else {
        println!("FAILED");
        ExitCode::FAILURE
    }
}
