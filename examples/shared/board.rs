//! The message board that `writer` and `reader` share through a POSIX named segment.
#![allow(dead_code)]

use shmsync::{ShmCondvar, ShmMutex, ShmSafe};

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

/// The value of `--flag` in the command line, if present.
pub fn arg(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}
