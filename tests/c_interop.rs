//! C and Rust processes on one mutex: the classic C writer and reader (`examples/c/`), built
//! here with the system C compiler (`$CC`, or `cc`), share a System V segment with Rust
//! processes that join it through `ForeignSegment` and `CMutex`. Exact counts with two writers
//! per language; a `kill -9` of a C holder seen by Rust as poison and repaired, and the
//! reverse; a dead C holder of a mutex that is not robust gives `WouldBlock`. The recovery
//! times are printed (`--nocapture`), never asserted.

mod c_build;
mod common;
mod region_util;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::{role, wait_spawned, wait_until, CHILD_DEADLINE, ROLE_VAR};
use region_util::{RemoveFile, RmKey};
use shmsync::interop::{CMutex, CMutexGuard, ForeignSegment};
use shmsync::{ShmOptions, ShmSafe, SysvKey};

/// The data of `struct shared { pthread_mutex_t lock; int counter; char text[64]; }`.
#[derive(ShmSafe)]
#[repr(C)]
struct Shared {
    counter: i32,
    text: [u8; 64],
}

const PATH_VAR: &str = "SHMSYNC_TEST_C_PATH";
const COUNT_VAR: &str = "SHMSYNC_TEST_C_COUNT";
/// How many kills each recovery test measures.
const ROUNDS: usize = 5;

/// The C example `name` (`examples/c/<name>.c`), compiled once per test run.
fn c_program(name: &str) -> PathBuf {
    c_build::program(&format!("examples/c/{name}.c"), &[])
}

/// A fresh ftok path with its key, and the segment removed at the end.
struct Segment {
    file: RemoveFile,
    _rm: RmKey,
}

impl Segment {
    fn new(tag: &str) -> Segment {
        let (file, key) = region_util::ftok_key(tag, b'R');
        Segment {
            file,
            _rm: RmKey(key),
        }
    }

    fn path(&self) -> &str {
        self.file.0.to_str().unwrap()
    }

    /// Runs the C writer with `args` on this segment and waits for it.
    fn c_writer(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(c_program("writer"));
        cmd.args(["-p", self.path()]).args(args);
        output_of(cmd)
    }

    /// Starts the C writer with `args`, its stdout piped.
    fn spawn_c_writer(&self, args: &[&str]) -> Child {
        let mut cmd = Command::new(c_program("writer"));
        cmd.args(["-p", self.path()]).args(args);
        piped(cmd)
    }

    /// The Rust process's view of it.
    fn join(&self) -> ForeignSegment {
        join(self.path())
    }
}

/// Joins the C writer's segment for `path`.
fn join(path: &str) -> ForeignSegment {
    let key = SysvKey::ftok(path, b'R').unwrap();
    ForeignSegment::sysv_open(key, &ShmOptions::new()).unwrap()
}

/// The `CMutex<Shared>` at the start of the C writer's segment.
fn shared(seg: &ForeignSegment) -> &CMutex<Shared> {
    // SAFETY: the C writer initialised the mutex PTHREAD_PROCESS_SHARED, of the default
    // (normal) type, and every process touches the data only under it.
    unsafe { seg.get_unchecked(0) }.unwrap()
}

/// Takes the lock, repairing the data after a holder's death as the C programs do.
fn lock_repairing(m: &CMutex<Shared>) -> CMutexGuard<'_, Shared> {
    match m.lock().unwrap() {
        Ok(guard) => guard,
        Err(poisoned) => repair(poisoned.into_inner()),
    }
}

fn repair(mut guard: CMutexGuard<'_, Shared>) -> CMutexGuard<'_, Shared> {
    let note = format!("repaired by Rust pid {}", std::process::id());
    guard.text = [0; 64];
    guard.text[..note.len()].copy_from_slice(note.as_bytes());
    CMutexGuard::mark_consistent(&mut guard);
    guard
}

/// Runs `cmd` to the end (within the children's deadline) and returns its stdout.
fn output_of(cmd: Command) -> String {
    let mut child = piped(cmd);
    let stdout = child.stdout.take().unwrap();
    let code = wait_spawned(child);
    let text = std::io::read_to_string(stdout).unwrap();
    assert_eq!(code, Some(0), "exited with {code:?}; printed:\n{text}");
    text
}

fn piped(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped()).spawn().expect("spawn")
}

/// Waits for a line containing `marker` (a Rust child's marker follows libtest's
/// "test NAME ... " on the same line); panics at the children's deadline.
fn wait_for_line(lines: &mpsc::Receiver<String>, marker: &str) -> String {
    loop {
        match lines.recv_timeout(CHILD_DEADLINE) {
            Ok(line) if line.contains(marker) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {marker:?} from the child: {e}"),
        }
    }
}

/// Starts this test binary as an unrelated process playing `role` on `path`, stdout piped.
fn spawn_rust(test: &str, role: &str, path: &str, count: u32) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env(PATH_VAR, path)
        .env(COUNT_VAR, count.to_string());
    piped(cmd)
}

/// Plays the role this process was spawned for, if any; returns whether it did.
fn play_role() -> bool {
    let Some(role) = role() else {
        return false;
    };
    let path = std::env::var(PATH_VAR).unwrap();
    let seg = join(&path);
    let m = shared(&seg);
    match role.as_str() {
        "rust-writer" => {
            let count: u32 = std::env::var(COUNT_VAR).unwrap().parse().unwrap();
            for _ in 0..count {
                lock_repairing(m).counter += 1;
            }
        }
        "rust-holder" => {
            let _guard = lock_repairing(m);
            println!("holding");
            loop {
                // SAFETY: pause only waits for a signal; the test kills this process here.
                unsafe { libc::pause() };
            }
        }
        other => panic!("unknown role {other}"),
    }
    true
}

/// The counter as the C reader prints it.
fn c_reader_counter(seg: &Segment) -> i32 {
    let mut cmd = Command::new(c_program("reader"));
    cmd.args(["-p", seg.path()]);
    let out = output_of(cmd);
    let rest = out.strip_prefix("counter=").expect("the reader's line");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// CLOCK_MONOTONIC in nanoseconds, the clock the C programs print.
fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Whether process (or thread) `pid` is asleep in a futex call, from `/proc/<pid>/syscall`.
fn in_futex_wait(proc_path: &str) -> bool {
    std::fs::read_to_string(proc_path)
        .is_ok_and(|line| line.split_whitespace().next() == Some(&libc::SYS_futex.to_string()))
}

/// A child that holds the lock until it is killed; killed on drop too, so that a failing
/// test leaves no process behind.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kill9(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

fn report(what: &str, mut micros: Vec<f64>) {
    micros.sort_by(f64::total_cmp);
    println!(
        "{what}: {} kills, recovery min {:.0} µs, median {:.0} µs, max {:.0} µs",
        micros.len(),
        micros[0],
        micros[micros.len() / 2],
        micros[micros.len() - 1]
    );
}

#[test]
fn the_c_struct_has_cmutexs_layout() {
    let seg = Segment::new("c-layout");
    let line = seg.c_writer(&["-L"]);
    let mutex = core::mem::size_of::<libc::pthread_mutex_t>();
    let expected = format!(
        "size={} lock=0 counter={} text={} mutex={mutex}\n",
        core::mem::size_of::<CMutex<Shared>>(),
        mutex + core::mem::offset_of!(Shared, counter),
        mutex + core::mem::offset_of!(Shared, text),
    );
    assert_eq!(line, expected);
}

#[test]
fn two_c_and_two_rust_writers_count_exactly() {
    if play_role() {
        return;
    }
    const EACH: u32 = 20_000;
    let seg = Segment::new("c-count");
    seg.c_writer(&["-n", "0"]); // creates the segment and initialises the mutex
    let each = EACH.to_string();
    let test = "two_c_and_two_rust_writers_count_exactly";
    let writers = vec![
        seg.spawn_c_writer(&["-n", &each]),
        spawn_rust(test, "rust-writer", seg.path(), EACH),
        seg.spawn_c_writer(&["-n", &each]),
        spawn_rust(test, "rust-writer", seg.path(), EACH),
    ];
    for writer in writers {
        assert_eq!(wait_spawned(writer), Some(0));
    }
    assert_eq!(c_reader_counter(&seg), 4 * EACH as i32);
    let view = seg.join();
    assert_eq!(
        shared(&view).lock().unwrap().unwrap().counter,
        4 * EACH as i32
    );
}

#[test]
fn a_killed_c_holder_is_poison_for_rust_and_repaired() {
    let seg = Segment::new("c-holder");
    seg.c_writer(&["-n", "0"]);
    let view = seg.join();
    let m = shared(&view);
    let mut micros = Vec::new();
    for round in 0..ROUNDS {
        let mut holder = Holder(seg.spawn_c_writer(&["-n", "1", "-H"]));
        let lines = c_build::lines_of(&mut holder.0);
        wait_for_line(&lines, "holding");
        let (tid_send, tid) = mpsc::channel();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                // SAFETY: gettid has no preconditions.
                tid_send.send(unsafe { libc::gettid() }).unwrap();
                let poisoned = m.lock().unwrap().err().expect("the C holder's death");
                let at = monotonic_ns();
                let guard = repair(poisoned.into_inner());
                (at, guard.counter)
            });
            let task = format!("/proc/self/task/{}/syscall", tid.recv().unwrap());
            assert!(wait_until(CHILD_DEADLINE, || in_futex_wait(&task)));
            let killed_at = monotonic_ns();
            kill9(&mut holder.0);
            let (at, counter) = waiter.join().unwrap();
            assert_eq!(counter, round as i32 + 1);
            micros.push((at - killed_at) as f64 / 1e3);
        });
    }
    report("C holder killed, Rust waiter in lock()", micros);
    // Repaired for the C side too: a C writer and reader carry on.
    seg.c_writer(&["-n", "3"]);
    assert_eq!(c_reader_counter(&seg), ROUNDS as i32 + 3);
}

#[test]
fn a_killed_rust_holder_is_poison_for_c_and_repaired() {
    if play_role() {
        return;
    }
    let test = "a_killed_rust_holder_is_poison_for_c_and_repaired";
    let seg = Segment::new("rust-holder");
    seg.c_writer(&["-n", "0"]);
    let mut micros = Vec::new();
    for round in 0..ROUNDS {
        let mut holder = Holder(spawn_rust(test, "rust-holder", seg.path(), 0));
        wait_for_line(&c_build::lines_of(&mut holder.0), "holding");
        let mut c_writer = seg.spawn_c_writer(&["-n", "1"]);
        let lines = c_build::lines_of(&mut c_writer);
        let syscall = format!("/proc/{}/syscall", c_writer.id());
        assert!(wait_until(CHILD_DEADLINE, || in_futex_wait(&syscall)));
        let killed_at = monotonic_ns();
        kill9(&mut holder.0);
        let line = wait_for_line(&lines, "recovered: owner died");
        let at: i64 = line
            .split_whitespace()
            .rev()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("the C writer's timestamp");
        micros.push((at - killed_at) as f64 / 1e3);
        assert_eq!(
            wait_for_line(&lines, "counter="),
            format!("counter={}", round + 1)
        );
        assert_eq!(wait_spawned(c_writer), Some(0));
    }
    report("Rust holder killed, C waiter in pthread_mutex_lock", micros);
    let view = seg.join();
    let guard = shared(&view)
        .lock()
        .unwrap()
        .expect("repaired by the C writer");
    assert!(guard.text.starts_with(b"C pid "), "the C writer wrote last");
}

#[test]
fn a_dead_c_holder_of_a_stalled_mutex_gives_would_block() {
    let seg = Segment::new("c-stalled");
    let mut holder = Holder(seg.spawn_c_writer(&["-n", "2", "-s", "-H"]));
    wait_for_line(&c_build::lines_of(&mut holder.0), "holding");
    kill9(&mut holder.0);
    let view = seg.join();
    let m = shared(&view);
    common::assert_stays_locked(m);
}
