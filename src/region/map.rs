//! The memory behind a `ShmBox`: who maps it and how it is released.

use std::io;
use std::ptr::NonNull;

use crate::sys::error::last_os_error;

/// A live mapping, released on drop.
pub(crate) enum Mapping {
    /// `mmap(MAP_SHARED | MAP_ANONYMOUS)`: shared with children forked later.
    Anonymous { ptr: NonNull<u8>, len: usize },
    /// A POSIX named segment (or any file) mapped `MAP_SHARED`, and a descriptor of the open
    /// file description that marks the segment in use for as long as the mapping lives (see
    /// `posix::hold`; leaked with the mapping when the mapping must stay).
    File {
        map: memmap2::MmapRaw,
        _holder: std::fs::File,
    },
    /// A memfd mapped `MAP_SHARED`, and the memfd itself: handed out by `ShmBox::memfd`, and
    /// closed with the mapping (leaked with it when the mapping must stay).
    Memfd {
        map: memmap2::MmapRaw,
        file: std::fs::File,
    },
    /// A System V segment of `len` bytes attached with `shmat`.
    Sysv {
        ptr: NonNull<u8>,
        id: i32,
        len: usize,
    },
    /// Zeroed heap memory, page-aligned: `ShmBox::new` in a loom model, which has no `fork`.
    Heap {
        ptr: NonNull<u8>,
        layout: std::alloc::Layout,
    },
}

/// The system's page size: every mapping starts at a multiple of it.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

impl Mapping {
    /// `len` zeroed bytes for `ShmBox::new`: an anonymous shared mapping, or heap memory in
    /// a loom model (see `shmsync::loom`).
    pub(crate) fn for_new_box(len: usize) -> io::Result<Mapping> {
        if crate::sync::MODELLED {
            Mapping::heap(len)
        } else {
            Mapping::anonymous(len)
        }
    }

    /// A fresh anonymous shared mapping of `len` zeroed bytes.
    fn anonymous(len: usize) -> io::Result<Mapping> {
        // SAFETY: a new anonymous mapping at an address of the kernel's choosing touches no
        // existing memory.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_os_error(format_args!(
                "mmap of {len} anonymous shared bytes"
            )));
        }
        let ptr = NonNull::new(ptr.cast()).expect("mmap does not return address 0");
        Ok(Mapping::Anonymous { ptr, len })
    }

    /// `len` zeroed, page-aligned bytes of heap memory, for loom models.
    fn heap(len: usize) -> io::Result<Mapping> {
        let layout = std::alloc::Layout::from_size_align(len, page_size())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `layout` has a non-zero size (callers ask for at least one byte).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or(io::ErrorKind::OutOfMemory)?;
        Ok(Mapping::Heap { ptr, layout })
    }

    /// The first byte of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        match self {
            Mapping::Anonymous { ptr, .. } | Mapping::Sysv { ptr, .. } => ptr.as_ptr(),
            Mapping::Heap { ptr, .. } => ptr.as_ptr(),
            Mapping::File { map, .. } | Mapping::Memfd { map, .. } => map.as_mut_ptr(),
        }
    }

    /// The System V id, for an attached System V segment.
    pub(crate) fn sysv_id(&self) -> Option<i32> {
        match self {
            Mapping::Sysv { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The memfd, for a box made by the `memfd_` functions or `from_fd`.
    pub(crate) fn memfd(&self) -> Option<&std::fs::File> {
        match self {
            Mapping::Memfd { file, .. } => Some(file),
            _ => None,
        }
    }

    /// What kind of memory this is, for `Debug`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Mapping::Anonymous { .. } => "anonymous",
            Mapping::File { .. } => "posix",
            Mapping::Memfd { .. } => "memfd",
            Mapping::Sysv { .. } => "sysv",
            Mapping::Heap { .. } => "heap",
        }
    }
}

impl Mapping {
    /// The mapped range: its first byte and its length.
    pub(crate) fn span(&self) -> (usize, usize) {
        match self {
            Mapping::Anonymous { ptr, len } | Mapping::Sysv { ptr, len, .. } => {
                (ptr.as_ptr() as usize, *len)
            }
            Mapping::File { map, .. } | Mapping::Memfd { map, .. } => {
                (map.as_mut_ptr() as usize, map.len())
            }
            Mapping::Heap { ptr, layout } => (ptr.as_ptr() as usize, layout.size()),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        match self {
            Mapping::Anonymous { ptr, len } => {
                // SAFETY: this mapping was made by `anonymous` with this length and no
                // reference into it outlives the owning `ShmBox`.
                let rc = unsafe { libc::munmap(ptr.as_ptr().cast(), *len) };
                debug_assert_eq!(rc, 0, "munmap failed");
            }
            Mapping::Sysv { ptr, .. } => {
                // SAFETY: the address came from `shmat` and no reference into the segment
                // outlives the owning `ShmBox`.
                let rc = unsafe { libc::shmdt(ptr.as_ptr().cast()) };
                debug_assert_eq!(rc, 0, "shmdt failed");
            }
            Mapping::File { .. } | Mapping::Memfd { .. } => {}
            Mapping::Heap { ptr, layout } => {
                // SAFETY: allocated by `heap` with this layout; no reference into it
                // outlives the owning `ShmBox`.
                unsafe { std::alloc::dealloc(ptr.as_ptr(), *layout) };
            }
        }
    }
}
