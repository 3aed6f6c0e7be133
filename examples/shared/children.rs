//! Forked worker processes for the examples: each runs a closure and `_exit`s, and the parent
//! reaps them all.
#![allow(dead_code)]

/// Forks a child that runs `body` (shmsync calls only) and `_exit`s with 0.
pub fn fork(body: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the child runs `body` and `_exit`s without returning into main.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        body();
        // SAFETY: ends the child without returning into main.
        unsafe { libc::_exit(0) };
    }
    pid
}

/// Reaps every child in `pids`; whether all of them exited with 0.
pub fn reap_all(pids: impl IntoIterator<Item = libc::pid_t>) -> bool {
    let mut all_ok = true;
    for pid in pids {
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        all_ok &= libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    }
    all_ok
}
