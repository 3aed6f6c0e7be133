//! The message board that `writer` and `reader` share through a POSIX named segment.
#![allow(dead_code)]

use std::io::ErrorKind;
use std::process::ExitCode;

use crate::cli;
use shmsync::{ShmBox, ShmCondvar, ShmMutex, ShmSafe};

/// The segment both use when no `--name` is given.
pub const DEFAULT_NAME: &str = "/shmsync-board";

/// Bytes of text a message holds.
pub const TEXT: usize = 120;

/// The latest message; `text[..len]` is the message, written in the same critical section as
/// `seq`, so a reader that sees a torn one knows a writer died mid-update.
#[derive(ShmSafe, Clone, Copy)]
#[repr(C)]
pub struct Message {
    pub seq: u64,
    pub writer_pid: u32,
    pub len: u32,
    pub text: [u8; TEXT],
}

/// The segment's contents.
#[derive(ShmSafe)]
#[repr(C)]
pub struct Board {
    pub latest: ShmMutex<Message>,
    pub posted: ShmCondvar,
}

impl Board {
    pub fn empty() -> Board {
        Board {
            latest: ShmMutex::new(Message {
                seq: 0,
                writer_pid: 0,
                len: 0,
                text: [0; TEXT],
            }),
            posted: ShmCondvar::new(),
        }
    }
}

impl Message {
    /// The text every message with this `seq` and writer must carry.
    pub fn expected_text(seq: u64, writer_pid: u32, last: bool) -> String {
        format!(
            "message {seq} from pid {writer_pid}{}",
            if last { " (last)" } else { "" }
        )
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.text[..(self.len as usize).min(TEXT)]).unwrap_or("<not utf-8>")
    }

    /// Whether the text matches the header fields (false for a torn update).
    pub fn is_whole(&self) -> bool {
        let t = self.text();
        t == Message::expected_text(self.seq, self.writer_pid, false)
            || t == Message::expected_text(self.seq, self.writer_pid, true)
    }
}

/// The value of `--name`: a segment name as `shm_open` takes it.
pub fn name(parser: &mut cli::Parser) -> Result<String, cli::Error> {
    let name: String = cli::value(parser, "--name")?;
    if name.len() > 1 && name.starts_with('/') && !name[1..].contains('/') {
        Ok(name)
    } else {
        Err(format!("--name must start with '/' and contain no other '/', not {name:?}").into())
    }
}

/// Opens the board called `name`, creating an empty one if there is none. On failure, prints
/// why as `program`'s verdict and returns the exit code.
pub fn open(program: &str, name: &str) -> Result<ShmBox<Board>, ExitCode> {
    ShmBox::open_or_create(name, Board::empty).map_err(|e| {
        if matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::Unsupported) {
            // On Linux a POSIX named segment is the file /dev/shm/<name>.
            println!(
                "{program}: {name} is not a board this build can use (another layout, or its \
                 creator died); `rm /dev/shm/{}` removes it",
                name.trim_start_matches('/')
            );
        }
        println!("FAILED: {program} could not open {name}: {e}");
        ExitCode::FAILURE
    })
}
