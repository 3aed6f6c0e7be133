//! Passing one file descriptor over a Unix stream socket: `sendmsg` with an `SCM_RIGHTS`
//! control message, `recvmsg` with `MSG_CMSG_CLOEXEC`. (std's ancillary-data API is not
//! stable yet, so this is written on libc.) Used by the `fd_passing` example and the memfd
//! tests.
#![allow(dead_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Bytes of control buffer: room for one `cmsghdr` carrying a few descriptors.
const CONTROL_LEN: usize = 64;

/// A control-message buffer aligned as `cmsghdr` must be (`CMSG_FIRSTHDR` and `CMSG_NXTHDR`
/// hand out pointers into it that are read and written as headers).
#[repr(C)]
union Control {
    _align: libc::cmsghdr,
    bytes: [u8; CONTROL_LEN],
}

impl Control {
    fn new() -> Control {
        Control {
            bytes: [0; CONTROL_LEN],
        }
    }
}

/// The space one control message with one descriptor takes (`CMSG_SPACE`).
fn one_fd_space() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    assert!(
        space <= CONTROL_LEN,
        "control buffer too small for one descriptor"
    );
    space
}

/// An empty `msghdr` whose data is `iov` and whose control buffer is the first `len` bytes
/// of `control`.
fn message(iov: &mut libc::iovec, control: &mut Control, len: usize) -> libc::msghdr {
    // SAFETY: msghdr is plain data (pointers, lengths, flags) for which all zeroes is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    // SAFETY: writing the byte view of the union is always allowed (it has no invalid values).
    msg.msg_control = unsafe { control.bytes.as_mut_ptr() }.cast();
    msg.msg_controllen = len as _;
    msg
}

/// Sends `fd` to the peer of `stream`, with one data byte (a stream socket delivers control
/// messages only with data). The peer gets its own descriptor of the same open file.
pub fn send_fd(stream: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    let byte = [b'F'];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut libc::c_void,
        iov_len: byte.len(),
    };
    let mut control = Control::new();
    let space = one_fd_space();
    let msg = message(&mut iov, &mut control, space);
    // SAFETY: `msg` names a control buffer of `space` bytes, room for one header.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!cmsg.is_null(), "CMSG_FIRSTHDR of a non-empty buffer");
    // SAFETY: cmsghdr is plain data for which all zeroes is valid (musl pads it).
    let mut header: libc::cmsghdr = unsafe { std::mem::zeroed() };
    header.cmsg_level = libc::SOL_SOCKET;
    header.cmsg_type = libc::SCM_RIGHTS;
    // SAFETY: CMSG_LEN only computes a size.
    header.cmsg_len = unsafe { libc::CMSG_LEN(size_of::<RawFd>() as u32) } as _;
    // SAFETY: `cmsg` points to the start of `control`, aligned for a cmsghdr (the union's
    // `_align` field) and with `space` bytes behind it.
    unsafe { cmsg.write(header) };
    // SAFETY: CMSG_DATA points just past the header, to the descriptor's bytes, which lie
    // within `space`; it may be unaligned for an int, hence the unaligned write.
    unsafe {
        libc::CMSG_DATA(cmsg)
            .cast::<RawFd>()
            .write_unaligned(fd.as_raw_fd())
    };
    loop {
        // SAFETY: `msg` points to `iov` (one byte) and `control`, both alive for the call.
        let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match sent {
            1 => return Ok(()),
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "sendmsg sent nothing",
                ))
            }
        }
    }
}

/// Receives one descriptor sent by [`send_fd`] (close-on-exec). Descriptors that come with
/// it beyond the first are closed; a message without one is an error.
pub fn recv_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    let mut control = Control::new();
    let mut msg = message(&mut iov, &mut control, CONTROL_LEN);
    let got = loop {
        // SAFETY: `msg` points to `iov` (one writable byte) and `control` (CONTROL_LEN
        // writable bytes), both alive for the call.
        let got = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if got >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break got;
        }
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // Owned at once, so that every descriptor received is closed on every path below.
    let mut fds = received_fds(&msg);
    if got == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the socket without sending a descriptor",
        ));
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("the control message was cut short"));
    }
    match fds.len() {
        0 => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a message without a descriptor",
        )),
        _ => Ok(fds.swap_remove(0)),
    }
}

/// The descriptors in the `SCM_RIGHTS` messages of a received `msg`, owned.
fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by recvmsg; its control length says how much of the buffer
    // holds messages.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: the kernel wrote a whole, aligned header at `cmsg`, inside the buffer.
        let header = unsafe { cmsg.read() };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN only computes a size.
            let empty = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = (header.cmsg_len as usize).saturating_sub(empty) / size_of::<RawFd>();
            for i in 0..count {
                // SAFETY: the message's data holds `count` descriptors after the header,
                // within `cmsg_len`; they may be unaligned, hence the unaligned read.
                let fd = unsafe {
                    libc::CMSG_DATA(cmsg)
                        .cast::<RawFd>()
                        .add(i)
                        .read_unaligned()
                };
                // SAFETY: the kernel installed `fd` in this process for this message; no
                // one else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: `cmsg` is a header inside `msg`'s control buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    fds
}
