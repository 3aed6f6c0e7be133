//! Builds the C programs that tests run, with the system C compiler (`$CC`, or `cc`), into
//! `CARGO_TARGET_TMPDIR`: once per program and test process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{mpsc, Mutex};

/// The libraries a static Rust library needs on Linux (`rustc --print native-static-libs`).
pub const RUST_STATIC_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"];

/// `target/<profile>`, found from this test's own path, `target/<profile>/deps/<test>-<hash>`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The C program built from `source` (a path from the package root) with `args` after it
/// (include directories, libraries), compiled on first use with warnings as errors.
pub fn program(source: &str, args: &[&str]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap();
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(source) {
        return path.clone();
    }
    let path = compile(source, args);
    built.insert(source.to_string(), path.clone());
    path
}

fn compile(source: &str, args: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-programs");
    std::fs::create_dir_all(&dir).expect("create the C build directory");
    let name = Path::new(source).file_stem().expect("a C source file");
    let out = dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args([
            "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o",
        ])
        .arg(&out)
        .arg(root.join(source))
        .args(args)
        .current_dir(root)
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler {cc:?} (set CC to another): {e}"));
    assert!(status.success(), "{cc} failed on {source}");
    out
}

/// The lines a child prints on its piped stdout, read on a thread so that a wait for one
/// can have a deadline.
pub fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("a piped stdout");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}
