//! Whether the C library's robust-mutex lists still point into a range of memory.
//!
//! glibc keeps every robust mutex a thread holds on a per-thread list whose links live inside
//! the mutexes themselves, and it writes through those links whenever that thread locks or
//! unlocks another robust mutex (the kernel walks the list too, when the thread exits). A
//! pthread-backend mutex whose guard was leaked with `mem::forget` stays on its thread's list
//! forever, so the memory holding it must never be unmapped and reused: `ShmBox` asks
//! [`may_be_listed`] before it unmaps memory that holds pthread-backend primitives, and keeps
//! the memory mapped (leaks it) when the answer is yes.

/// Whether some thread's robust list may have an entry in `[start, start + len)`. Answers
/// yes when it cannot tell.
pub(crate) fn may_be_listed(start: usize, len: usize) -> bool {
    imp::may_be_listed(start, len)
}

/// Whether [`may_be_listed`] can answer no: whether this platform's lists can be read (or
/// there are none).
pub(crate) const LISTS_READABLE: bool = imp::READABLE;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::mem::size_of;

    /// glibc's lists are read with `get_robust_list`.
    pub(super) const READABLE: bool = true;

    /// How many entries a list may have before we stop following it and answer yes.
    const MAX_ENTRIES: usize = 4096;

    /// The kernel's `struct robust_list_head`: the list, the futex offset, the pending entry.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Head {
        next: usize,
        futex_offset: isize,
        pending: usize,
    }

    pub(super) fn may_be_listed(start: usize, len: usize) -> bool {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return true;
        };
        let inside = |addr: usize| addr >= start && addr < start.saturating_add(len);
        for task in tasks {
            let Some(tid) = task
                .ok()
                .and_then(|t| t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            else {
                return true;
            };
            match thread_list_hits(tid, &inside) {
                Some(false) => {}
                // The thread exited meanwhile: its list was processed and is gone.
                None if !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() => {}
                _ => return true,
            }
        }
        false
    }

    /// Follows thread `tid`'s robust list; `Some(hit)` when it could read the whole list.
    fn thread_list_hits(tid: i32, inside: &dyn Fn(usize) -> bool) -> Option<bool> {
        let mut head_ptr: usize = 0;
        let mut head_len: usize = 0;
        // SAFETY: get_robust_list writes one pointer and one length into our two locals.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_get_robust_list,
                tid,
                &mut head_ptr as *mut usize,
                &mut head_len as *mut usize,
            )
        };
        if rc != 0 {
            return None;
        }
        if head_ptr == 0 {
            return Some(false);
        }
        let head: Head = read(head_ptr)?;
        if inside(head.pending & !1) {
            return Some(true);
        }
        let mut entry = head.next & !1;
        for _ in 0..MAX_ENTRIES {
            if entry == head_ptr || entry == 0 {
                return Some(false);
            }
            if inside(entry) {
                return Some(true);
            }
            entry = read::<usize>(entry)? & !1;
        }
        None
    }

    /// Reads a `T` at `addr` of this process without trusting that it is mapped: another
    /// thread may be changing its list, so the address may be stale.
    fn read<T: Copy>(addr: usize) -> Option<T> {
        let mut out = std::mem::MaybeUninit::<T>::uninit();
        let local = libc::iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: size_of::<T>(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: size_of::<T>(),
        };
        // SAFETY: the kernel copies at most `size_of::<T>()` bytes into `out` and reports a
        // fault on `addr` as an error instead of touching it from user space.
        let copied = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        if copied != size_of::<T>() as isize {
            return None;
        }
        // SAFETY: all `size_of::<T>()` bytes were written, and `T` (an integer or `Head` of
        // integers) is valid for any bytes.
        Some(unsafe { out.assume_init() })
    }
}

#[cfg(target_os = "macos")]
mod imp {
    /// There is nothing to read.
    pub(super) const READABLE: bool = true;

    /// macOS has no robust mutexes, so no such list exists.
    pub(super) fn may_be_listed(_start: usize, _len: usize) -> bool {
        false
    }
}

#[cfg(not(any(all(target_os = "linux", target_env = "gnu"), target_os = "macos")))]
mod imp {
    /// Other C libraries keep their lists in their own layouts.
    pub(super) const READABLE: bool = false;

    /// Other C libraries keep their lists in their own layouts: assume the worst.
    pub(super) fn may_be_listed(_start: usize, _len: usize) -> bool {
        true
    }
}
