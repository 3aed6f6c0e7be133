//! shmsync placed into memory an application already maps with memmap2: a file mapping that
//! a second process maps on its own and attaches to.
//!
//! ```text
//! cargo run --example embed
//! ```
//!
//! The safe `ShmRef::init_in`/`attach_in` take the futex backend's mutex (Linux); the pthread
//! backend's goes through the unsafe `ShmRef::init`/`attach`, whose contracts cover what a
//! `MmapMut` cannot promise (see their docs).

#[cfg(target_os = "linux")]
use std::fs::OpenOptions;
#[cfg(target_os = "linux")]
use std::process::ExitCode;

#[cfg(target_os = "linux")]
use memmap2::MmapMut;
#[cfg(target_os = "linux")]
use shmsync::{futex::ShmMutex, ShmRef, ShmSafe};

#[path = "shared/cli.rs"]
mod cli;

const USAGE: &str = "\
Usage: embed

Places a ShmMutex at offset 4096 of a file the application maps with memmap2 (its own bytes
before it stay untouched); a forked child maps the file again, attaches and updates it.
Attaching as the wrong type is refused. Ends with OK when every update counted.
The file is a temporary one, removed at the end.

Options:
  -h, --help          print this help
";

/// The application's own file layout: a 4 KiB header page of its own, then shmsync's region.
#[cfg(target_os = "linux")]
const REGION_OFFSET: usize = 4096;

#[cfg(target_os = "linux")]
#[derive(ShmSafe)]
#[repr(C)]
struct Hits {
    by_parent: u64,
    by_child: u64,
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    if let Err(code) = cli::parse("embed", USAGE, cli::no_options) {
        return code;
    }
    println!("SKIPPED: this example uses the futex backend, which is Linux only");
    std::process::ExitCode::SUCCESS
}

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    if let Err(code) = cli::parse("embed", USAGE, cli::no_options) {
        return code;
    }
    let path = std::env::temp_dir().join(format!("shmsync-embed-{}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("create the backing file");
    file.set_len(8192).expect("size the file");
    // SAFETY: the file is ours and nobody truncates it while mapped.
    let mut map = unsafe { MmapMut::map_mut(&file) }.expect("map the file");
    map[..5].copy_from_slice(b"APPv1"); // the application's own bytes, left untouched

    let hits = ShmRef::init_in(
        &mut map,
        REGION_OFFSET,
        ShmMutex::new(Hits {
            by_parent: 0,
            by_child: 0,
        }),
    )
    .expect("place the mutex");

    // SAFETY: the child maps the file anew, attaches, updates, and `_exit`s.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // SAFETY: as above; a second, independent mapping of the same file.
        let mut own = unsafe { MmapMut::map_mut(&file) }.expect("map again");
        let code = match ShmRef::<ShmMutex<Hits>>::attach_in(&mut own, REGION_OFFSET) {
            Ok(mine) => {
                for _ in 0..10_000 {
                    mine.lock().expect("not poisoned").by_child += 1;
                }
                0
            }
            Err(e) => {
                eprintln!("child: attach: {e}");
                1
            }
        };
        // SAFETY: ends the child without returning into main.
        unsafe { libc::_exit(code) };
    }
    for _ in 0..10_000 {
        hits.lock().expect("not poisoned").by_parent += 1;
    }
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let child_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let (p, c) = {
        let h = hits.lock().expect("not poisoned");
        (h.by_parent, h.by_child)
    };
    let app_bytes_intact = &map[..5] == b"APPv1";
    println!("parent hits {p}, child hits {c} (10000 each); application header intact: {app_bytes_intact}");
    // Attaching as the wrong type is refused rather than misread.
    let wrong = ShmRef::<ShmMutex<u64>>::attach_in(&mut map, REGION_OFFSET);
    println!(
        "attach as ShmMutex<u64>: {}",
        wrong
            .as_ref()
            .err()
            .map_or("accepted?!".into(), |e| e.to_string())
    );
    let _ = std::fs::remove_file(&path);
    if child_ok && p == 10_000 && c == 10_000 && app_bytes_intact && wrong.is_err() {
        println!("OK: two processes shared a mutex placed in the application's own file mapping");
        ExitCode::SUCCESS
    } else {
        println!("FAILED: child ok {child_ok}, hits {p}/{c} of 10000 each, header intact {app_bytes_intact}, wrong type refused {}", wrong.is_err());
        ExitCode::FAILURE
    }
}
