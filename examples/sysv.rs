//! The classic System V pattern: an `ftok` key, `shmget`, a parent and a child sharing a
//! struct under a `ShmMutex`, and `IPC_RMID` at the end.
//!
//! ```text
//! cargo run --example sysv -- --iterations 100000
//! ```

use std::process::ExitCode;

use shmsync::{ShmBox, ShmMutex, ShmSafe, SysvKey};

#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: sysv [--iterations N]

The classic System V pattern: an ftok key, a segment made with shmget, a parent and a forked
child that attaches it again by key, both updating a struct under a ShmMutex, and IPC_RMID at
the end. Ends with OK when every update counted and the key no longer opens after IPC_RMID.

Options:
  --iterations N      updates by each process (1..=1000000000, default 100000)
  -h, --help          print this help
";

fn parse_args(parser: &mut cli::Parser) -> Result<cli::Request<u64>, cli::Error> {
    use cli::{Long, Short};
    let mut iterations = 100_000;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("iterations") => {
                iterations = cli::number(parser, "--iterations", 1..=1_000_000_000)?
            }
            Short('h') | Long("help") => return Ok(cli::Request::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(cli::Request::Run(iterations))
}

#[derive(ShmSafe)]
#[repr(C)]
struct Stats {
    parent: u64,
    child: u64,
}

fn main() -> ExitCode {
    let iterations = match cli::parse("sysv", USAGE, parse_args) {
        Ok(iterations) => iterations,
        Err(code) => return code,
    };

    // A key derived from a file both sides know (here: a private temp file) and a project id.
    let key_file = std::env::temp_dir().join(format!("shmsync-sysv-{}", std::process::id()));
    std::fs::write(&key_file, b"ftok anchor").expect("temp file");
    let key = SysvKey::ftok(&key_file, b'S').expect("ftok");
    println!("ftok({}, 'S') = {key:?}", key_file.display());

    let created = ShmBox::sysv_create(
        key,
        ShmMutex::new(Stats {
            parent: 0,
            child: 0,
        }),
    );
    let stats = match created {
        Ok(stats) => stats,
        Err(e) => {
            let _ = std::fs::remove_file(&key_file);
            // AlreadyExists: a segment left by a run that died before IPC_RMID has this key;
            // `ipcs -m` lists it and `ipcrm -M KEY` removes it.
            println!("FAILED: shmget(IPC_CREAT | IPC_EXCL) for {key:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        println!("OK: parent and child shared one System V segment by key; IPC_RMID removed it");
        ExitCode::SUCCESS
    } else if !gone {
        println!("FAILED: the key still opens a segment after IPC_RMID");
        ExitCode::FAILURE
    } else {
        println!("FAILED: the child failed or updates were lost");
        ExitCode::FAILURE
    }
}
