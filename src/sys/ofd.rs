//! Open-file-description byte locks (`F_OFD_SETLK`, `F_OFD_SETLKW`, `F_OFD_GETLK`): held by
//! an open file description rather than a process, so they need no PID, and the kernel drops
//! them when the last descriptor of the description closes (exit, exec with close-on-exec).

/// One OFD lock call of kind `kind` (`F_RDLCK`, `F_WRLCK`, `F_UNLCK`) on the byte at
/// `start` of the open file `fd`; the lock type the kernel reports back (for `F_OFD_GETLK`:
/// `F_UNLCK` when nobody else's lock would conflict). Retried on `EINTR`; other errors are
/// returned as their errno.
pub(crate) fn lock(fd: i32, cmd: i32, kind: i16, start: i64) -> Result<i16, i32> {
    let mut fl = libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as i16,
        l_start: start,
        l_len: 1,
        l_pid: 0,
    };
    loop {
        // SAFETY: `fl` is a valid flock record; OFD commands require l_pid == 0.
        if unsafe { libc::fcntl(fd, cmd, &mut fl) } == 0 {
            return Ok(fl.l_type);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(e) => return Err(e),
            None => return Err(libc::EIO),
        }
    }
}
