//! shmsync's C API (`shmsync-capi`, `include/shmsync.h`) from C programs built here with the
//! system C compiler and linked against the static library: the header checked against the
//! Rust side, the C board writer and reader paired with the Rust `reader` and `writer`
//! examples, owner death as a distinct code, and timed locks on CLOCK_MONOTONIC.
//!
//! The Rust examples and `libshmsync_capi.a` (a dev-dependency) are built by `cargo test`.

mod c_build;
mod common;

#[path = "../examples/shared/board.rs"]
mod board;
#[path = "../examples/shared/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::{fork, pidfd_open, poll_exited, unique_name, wait_until, CHILD_DEADLINE};
use shmsync::ShmSafe;
use shmsync_capi::*;

/// The C program `source`, compiled against `include/shmsync.h` and the static library.
fn c_program(source: &str) -> PathBuf {
    // Built as a dev-dependency, every crate type of it lands in `target/<profile>/deps`.
    let lib = c_build::profile_dir().join("deps/libshmsync_capi.a");
    assert!(
        lib.exists(),
        "{} is not built: it is a dev-dependency, so `cargo test` builds it",
        lib.display()
    );
    let lib = lib.to_str().unwrap().to_string();
    let mut args = vec!["-Iinclude", "-Iexamples/c", lib.as_str()];
    args.extend_from_slice(c_build::RUST_STATIC_LIBS);
    c_build::program(source, &args)
}

/// A Rust example, built by `cargo test` into `target/<profile>/examples`.
fn rust_example(name: &str) -> Command {
    let path = c_build::profile_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: `cargo test` builds the examples (or `cargo build --examples`)",
        path.display()
    );
    Command::new(path)
}

/// A fresh board name, unlinked when dropped.
struct BoardName(String);

impl BoardName {
    fn new(tag: &str) -> BoardName {
        BoardName(unique_name(tag))
    }
}

impl Drop for BoardName {
    fn drop(&mut self) {
        let _ = shmsync::unlink(&self.0);
    }
}

/// A child with its stdout lines on a channel; killed on drop if still running.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
        let lines = c_build::lines_of(&mut child);
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`; panics at the children's deadline.
    fn wait_for_line(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(CHILD_DEADLINE) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("no line {prefix:?} (after {:?}): {e}", self.seen),
            }
        }
    }

    /// Waits for the exit (within the children's deadline); returns its code and the lines
    /// not consumed yet.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let pidfd = pidfd_open(self.child.id() as libc::pid_t);
        assert!(
            poll_exited(&pidfd, CHILD_DEADLINE),
            "the child hung (printed {:?})",
            self.seen
        );
        let code = self.child.wait().expect("wait").code();
        let mut rest = std::mem::take(&mut self.seen);
        while let Ok(line) = self.lines.recv_timeout(CHILD_DEADLINE) {
            rest.push(line);
        }
        (code, rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_header_matches_the_rust_side() {
    let checker = Running::start(Command::new(c_program("tests/c/abi_check.c")));
    let (code, lines) = checker.finish();
    assert_eq!(code, Some(0), "{lines:?}");
    // The fingerprint C sees is the Rust examples' board's, computed from the Rust type.
    let expected = format!(
        "fingerprint={:016x} failures=0",
        <board::Board as ShmSafe>::FINGERPRINT
    );
    assert_eq!(lines, [expected]);
    assert_eq!(
        SHMSYNC_BOARD_FINGERPRINT,
        <board::Board as ShmSafe>::FINGERPRINT
    );
}

#[test]
fn a_c_writer_posts_to_the_rust_reader() {
    let name = BoardName::new("capi-to-rust");
    let mut reader = rust_example("reader");
    reader.args(["--name", &name.0, "--until-last", "--timeout-secs", "60"]);
    let mut reader = Running::start(reader);
    reader.wait_for_line("reader: waiting on");
    let writer = c_program("examples/c/board_writer.c");
    let mut writer = Command::new(writer);
    writer.args(["-n", &name.0, "-c", "5", "-i", "2", "-l"]);
    let (code, lines) = Running::start(writer).finish();
    assert_eq!(code, Some(0), "{lines:?}");
    let (code, lines) = reader.finish();
    assert_eq!(code, Some(0), "{lines:?}");
    let verdict = lines.last().unwrap();
    assert!(verdict.starts_with("OK: received"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.ends_with(" (last)")),
        "the reader printed the last message: {lines:?}"
    );
}

#[test]
fn the_rust_writer_posts_to_a_c_reader() {
    let name = BoardName::new("rust-to-capi");
    let reader = c_program("examples/c/board_reader.c");
    let mut reader = Command::new(reader);
    reader.args(["-n", &name.0, "-t", "60"]);
    let mut reader = Running::start(reader);
    reader.wait_for_line("listening from seq");
    let mut writer = rust_example("writer");
    writer.args([
        "--name",
        &name.0,
        "--count",
        "5",
        "--interval-ms",
        "2",
        "--last",
    ]);
    let (code, lines) = Running::start(writer).finish();
    assert_eq!(code, Some(0), "{lines:?}");
    let (code, lines) = reader.finish();
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines.last().unwrap().starts_with("OK: received"),
        "{lines:?}"
    );
}

#[test]
fn a_killed_c_holder_is_owner_dead_once_then_repaired() {
    let name = BoardName::new("capi-holder");
    let writer = c_program("examples/c/board_writer.c");
    let mut holder = Command::new(&writer);
    holder.args(["-n", &name.0, "-c", "1", "-H"]);
    let mut holder = Running::start(holder);
    holder.wait_for_line("holding");
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    let run = |what: &str| {
        let mut next = Command::new(&writer);
        next.args(["-n", &name.0, "-c", "1"]);
        let (code, lines) = Running::start(next).finish();
        assert_eq!(code, Some(0), "{what}: {lines:?}");
        lines
    };
    let first = run("the writer after the death");
    let code = format!("recovered: a holder died (code {SHMSYNC_OWNER_DEAD})");
    assert!(first.contains(&code), "{first:?}");
    let second = run("the writer after the repair");
    assert!(
        !second.iter().any(|l| l.starts_with("recovered")),
        "{second:?}"
    );
    // The Rust side agrees: not poisoned, the last post is whole.
    let board = shmsync::ShmBox::<board::Board>::open(&name.0).unwrap();
    let latest = board.latest.lock().expect("repaired");
    assert!(latest.is_whole() && latest.seq == 3, "{}", latest.text());
}

/// Opens the board `name` through the C API.
fn open(name: &BoardName) -> *mut shmsync_board {
    let cname = std::ffi::CString::new(name.0.as_str()).unwrap();
    let mut board = std::ptr::null_mut();
    // SAFETY: `cname` is a C string; `board` is writable.
    let rc = unsafe { shmsync_board_open(cname.as_ptr(), &mut board) };
    assert_eq!(rc, SHMSYNC_OK);
    board
}

#[test]
fn a_timed_lock_of_a_held_board_times_out_and_a_dead_holder_is_owner_dead() {
    let name = BoardName::new("capi-timed");
    let board = open(&name);
    let flag = shmsync::ShmBox::new(std::sync::atomic::AtomicU32::new(0)).unwrap();
    let child = fork(|| {
        // SAFETY: this process's copy of the handle, used by this thread only.
        if unsafe { shmsync_board_lock(board, -1) } != SHMSYNC_OK {
            return 1;
        }
        flag.store(1, std::sync::atomic::Ordering::SeqCst);
        loop {
            // SAFETY: pause only waits for a signal; the parent kills this child here.
            unsafe { libc::pause() };
        }
    });
    let held = || flag.load(std::sync::atomic::Ordering::SeqCst) == 1;
    assert!(wait_until(CHILD_DEADLINE, held));
    // SAFETY: a live handle used by this thread only.
    let timed = unsafe { shmsync_board_lock(board, 20_000_000) };
    assert_eq!(timed, SHMSYNC_TIMED_OUT);
    // SAFETY: as above; not held by this handle.
    assert_eq!(unsafe { shmsync_board_unlock(board) }, SHMSYNC_E_STATE);
    child.kill();
    // SAFETY: as above.
    unsafe {
        assert_eq!(shmsync_board_lock(board, -1), SHMSYNC_OWNER_DEAD);
        assert_eq!(shmsync_board_unlock(board), SHMSYNC_OK);
        assert_eq!(shmsync_board_lock(board, 0), SHMSYNC_POISONED);
        assert_eq!(shmsync_board_clear_poison(board), SHMSYNC_OK);
        assert_eq!(shmsync_board_unlock(board), SHMSYNC_OK);
        assert_eq!(shmsync_board_lock(board, 0), SHMSYNC_OK);
        shmsync_board_close(board);
    }
}

#[test]
fn opening_a_segment_of_another_layout_is_a_layout_error() {
    let name = BoardName::new("capi-layout");
    let _other = shmsync::ShmBox::create(&name.0, 7u64).unwrap();
    let cname = std::ffi::CString::new(name.0.as_str()).unwrap();
    let mut board = std::ptr::null_mut();
    // SAFETY: `cname` is a C string; `board` is writable.
    let rc = unsafe { shmsync_board_open(cname.as_ptr(), &mut board) };
    assert_eq!(rc, SHMSYNC_E_LAYOUT);
    assert!(board.is_null());
}
