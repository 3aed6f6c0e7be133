//! The examples' command lines as a newcomer meets them: every example answers `--help`,
//! refuses an unknown flag or an impossible setting in one line with exit 2, and the README's
//! reader/writer commands can be run twice in a row, each reader seeing its own writer.
//!
//! The binaries are the ones `cargo test` builds beside this test, in
//! `target/<profile>/examples/`. A run limited to this file (`cargo test --test examples_cli`)
//! does not build them: `cargo build --examples` first (a binary older than its source is
//! refused, not run). Every process is killed at a deadline.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any one example may run; the reader's own default timeout is 60 s.
const DEADLINE: Duration = Duration::from_secs(90);

/// `target/<profile>/examples`, found from this test's own path,
/// `target/<profile>/deps/examples_cli-<hash>`.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    profile_dir.join("examples")
}

/// Every example in `examples/`, by name.
fn example_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 7, "examples found: {names:?}");
    names
}

/// The built example `name`.
fn example(name: &str) -> Command {
    let path = examples_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built: `cargo test` builds the examples, `cargo test --test examples_cli` \
         alone does not (run `cargo build --examples` first)",
        path.display()
    );
    // Cargo's dep-info names every source the binary was built from.
    let built = modified(&path);
    let deps = std::fs::read_to_string(path.with_extension("d")).unwrap_or_default();
    let sources = deps.split_once(": ").map_or("", |(_, sources)| sources);
    for source in sources.split_whitespace().map(Path::new) {
        assert!(
            !source.exists() || modified(source) <= built,
            "{} is older than {}: run `cargo build --examples` (or the whole `cargo test`)",
            path.display(),
            source.display()
        );
    }
    let mut command = Command::new(path);
    command.env("RUST_BACKTRACE", "1");
    command
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A running example whose stdout arrives line by line.
struct Running {
    what: String,
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Receiver<String>,
    deadline: Instant,
}

/// What an example printed and how it ended.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Running {
    fn start(mut command: Command, what: &str) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (tx, stderr_text) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        Running {
            what: what.to_string(),
            child,
            lines,
            stdout: Vec::new(),
            stderr: stderr_text,
            deadline: Instant::now() + DEADLINE,
        }
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Waits until the example prints a line starting with `prefix`.
    fn wait_for_line(&mut self, prefix: &str) {
        loop {
            match self.lines.recv_timeout(self.left()) {
                Ok(line) => {
                    let found = line.starts_with(prefix);
                    self.stdout.push(line);
                    if found {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.fail("no ready line before the deadline"),
                Err(RecvTimeoutError::Disconnected) => self.fail("ended before its ready line"),
            }
        }
    }

    /// Waits for the example to end; kills it at the deadline.
    fn finish(mut self) -> Finished {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= self.deadline {
                self.fail("still running at the deadline");
            }
            // Collect output while waiting, so that the wait has something to do.
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.stdout.push(line);
            }
        };
        // The pipes close when the example has ended (none of these leaves a child behind).
        loop {
            match self.lines.recv_timeout(self.left()) {
                Ok(line) => self.stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("stdout still open at the deadline"),
            }
        }
        let stderr = match self.stderr.recv_timeout(self.left()) {
            Ok(text) => text,
            Err(_) => self.fail("stderr still open at the deadline"),
        };
        Finished {
            status,
            stdout: self.stdout.iter().map(|l| format!("{l}\n")).collect(),
            stderr,
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdout.extend(self.lines.try_iter());
        panic!(
            "{}: {why}\n--- stdout so far:\n{}",
            self.what,
            self.stdout.join("\n")
        );
    }
}

fn run(command: Command, what: &str) -> Finished {
    Running::start(command, what).finish()
}

#[test]
fn every_example_prints_its_usage_for_help() {
    for name in example_names() {
        for flag in ["--help", "-h"] {
            let mut command = example(&name);
            command.arg(flag);
            let out = run(command, &format!("{name} {flag}"));
            assert_eq!(out.status.code(), Some(0), "{name} {flag}: {}", out.stderr);
            assert!(
                out.stdout.contains("Usage"),
                "{name} {flag} printed:\n{}",
                out.stdout
            );
            assert!(out.stderr.is_empty(), "{name} {flag}: {}", out.stderr);
        }
    }
}

/// Runs `name args` and checks it is a usage error: exit 2, nothing on stdout, one line on
/// stderr naming `mentions`, no panic.
fn assert_usage_error(name: &str, args: &[&str], mentions: &str) {
    let mut command = example(name);
    command.args(args);
    let what = format!("{name} {}", args.join(" "));
    let out = run(command, &what);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: stdout:\n{}stderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{what} printed:\n{}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{what}:\n{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!("{name}: ")),
        "{what}: {}",
        out.stderr
    );
    assert!(out.stderr.contains(mentions), "{what}: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
}

#[test]
fn every_example_refuses_an_unknown_flag_in_one_line() {
    for name in example_names() {
        assert_usage_error(&name, &["--bogus"], "--bogus");
    }
}

#[test]
fn bad_values_and_impossible_settings_are_usage_errors() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("ring", &["--producers", "abc"], "--producers"),
        ("ring", &["--producers", "0"], "--producers"),
        ("ring", &["--consumers", "0"], "--consumers"),
        ("ring", &["--items", "-5"], "--items"),
        ("fork_counter", &["--children", "0"], "--children"),
        ("fork_counter", &["--children"], "--children"),
        ("fork_counter", &["--backend", "spin"], "--backend"),
        ("sysv", &["--iterations", "0"], "--iterations"),
        ("writer", &["--count", "0"], "--count"),
        ("writer", &["--last=yes"], "--last"),
        ("writer", &["--name", "no-slash"], "--name"),
        ("reader", &["--timeout-secs", "soon"], "--timeout-secs"),
        ("reader", &["leftover"], "leftover"),
        ("crash", &["now"], "now"),
        ("frames", &["--frames", "0"], "--frames"),
        ("frames", &["--stride", "4097"], "--stride"),
        ("worker_pool", &["--slots", "32"], "--slots"),
        ("worker_pool", &["--workers", "0"], "--workers"),
        ("fd_passing", &["--workers", "0"], "--workers"),
        ("fd_passing", &["--join"], "--join"),
        ("phase_barrier", &["--workers", "33"], "--workers"),
        (
            "phase_barrier",
            &["--phases", "10", "--kill-at", "10"],
            "--kill-at",
        ),
    ];
    for (name, args, mentions) in cases {
        assert_usage_error(name, args, mentions);
    }
}

/// The arguments of the README's `cargo run --example NAME -- ...` command, with the segment
/// name replaced by `board` so that tests running at once never share one.
fn readme_command(name: &str, board: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let prefix = format!("cargo run --example {name} -- ");
    let line = readme
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("README.md has no `{prefix}...` command"));
    let line = line.split('#').next().unwrap().trim().trim_end_matches('&');
    let mut args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let at = args.iter().position(|a| a == "--name").expect("a --name");
    args[at + 1] = board.to_string();
    args
}

/// Removes a POSIX named segment when dropped, whether or not the test passed.
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let name = CString::new(self.0.as_str()).unwrap();
        // SAFETY: `name` is a valid NUL-terminated string; a missing segment is fine.
        unsafe { libc::shm_unlink(name.as_ptr()) };
    }
}

/// Runs the README's reader and writer commands on `board` the way the README does (reader
/// first, writer once the reader waits) and returns the writer's pid and the reader's output.
fn readme_pair(board: &str) -> (u32, Finished) {
    let mut reader = example("reader");
    reader.args(readme_command("reader", board));
    let mut reader = Running::start(reader, "README reader");
    reader.wait_for_line("reader: waiting on");
    let mut writer = example("writer");
    writer.args(readme_command("writer", board));
    let writer = Running::start(writer, "README writer");
    let writer_pid = writer.child.id();
    let wrote = writer.finish();
    assert!(
        wrote.status.success(),
        "writer:\n{}{}",
        wrote.stdout,
        wrote.stderr
    );
    assert!(
        wrote.stdout.lines().last().unwrap().starts_with("OK: "),
        "{}",
        wrote.stdout
    );
    (writer_pid, reader.finish())
}

fn assert_saw_own_writer(run: &str, writer_pid: u32, read: &Finished, others: &[u32]) {
    let out = &read.stdout;
    assert!(read.status.success(), "{run} reader:\n{out}{}", read.stderr);
    assert!(
        out.contains(&format!("from pid {writer_pid} (last)")),
        "{run} reader did not see its writer (pid {writer_pid}) finish:\n{out}"
    );
    for other in others {
        assert!(
            !out.contains(&format!("from pid {other}")),
            "{run} reader showed a message of an earlier writer (pid {other}):\n{out}"
        );
    }
    assert!(out.lines().last().unwrap().starts_with("OK: "), "{out}");
}

#[test]
fn readme_reader_and_writer_run_twice_each_reader_sees_its_own_writer() {
    let board = format!("/shmsync-examples-cli-twice-{}", std::process::id());
    let _cleanup = Unlink(board.clone());
    let (first_pid, first) = readme_pair(&board);
    assert_saw_own_writer("first", first_pid, &first, &[]);
    let (second_pid, second) = readme_pair(&board);
    assert_saw_own_writer("second", second_pid, &second, &[first_pid]);
}

#[test]
fn a_board_left_by_an_earlier_run_does_not_end_the_next_reader() {
    let board = format!("/shmsync-examples-cli-stale-{}", std::process::id());
    let _cleanup = Unlink(board.clone());
    // A writer alone leaves a message marked "(last)" on the board, and the board itself.
    let mut stale = example("writer");
    stale.args([
        "--name",
        &board,
        "--count",
        "2",
        "--interval-ms",
        "0",
        "--last",
    ]);
    let stale = Running::start(stale, "stale writer");
    let stale_pid = stale.child.id();
    assert!(stale.finish().status.success());
    let (writer_pid, read) = readme_pair(&board);
    assert_saw_own_writer("after a stale board", writer_pid, &read, &[stale_pid]);
}

#[test]
fn frames_passes_a_64_mib_pool_made_in_place_in_a_debug_build_too() {
    let mut command = example("frames");
    command.args(["--frames", "40", "--stride", "4096"]);
    let out = run(command, "frames");
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("64 MiB pool"), "{}", out.stdout);
    let verdict = out.stdout.lines().last().unwrap_or_default();
    assert!(verdict.starts_with("OK: 40 frames"), "{}", out.stdout);
}

#[test]
fn fd_passing_counts_exactly_in_workers_that_received_the_descriptor() {
    let mut command = example("fd_passing");
    command.args(["--workers", "2", "--iterations", "5000"]);
    let out = run(command, "fd_passing");
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    let received = out
        .stdout
        .lines()
        .filter(|l| l.contains("received descriptor"));
    assert_eq!(received.count(), 2, "{}", out.stdout);
    let verdict = out.stdout.lines().last().unwrap_or_default();
    assert!(verdict.starts_with("OK: 3 processes"), "{}", out.stdout);
    assert!(verdict.contains("counted 15000"), "{}", out.stdout);
}
