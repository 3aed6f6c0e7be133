//! Big values made in place: the `_zeroed` and `_with` constructors of `ShmBox` and
//! `ShmOptions`, for [`ShmZeroable`] types.
//!
//! Fresh shared memory is zero-filled by the kernel (`mmap(MAP_ANONYMOUS)`, `ftruncate` of a
//! new POSIX segment, `shmget`), so a `ShmZeroable` value is there already: these write only
//! the header (in the first page) and whatever the init closure writes. Nothing is built on
//! the stack, and creation costs the same for 1 KiB and 1 GiB.

use std::io;

use super::fill::InPlace;
use super::{posix, sysv, ShmBox, ShmOptions, SysvKey};
use crate::ShmZeroable;

impl<T: ShmZeroable> ShmBox<T> {
    /// [`new`](Self::new) of an all-zero `T`, made in place: anonymous `MAP_SHARED` memory
    /// shared with children forked later, of any size, touching none of the value's pages.
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, ShmMutex};
    ///
    /// // 256 MiB of mutexes and bytes, in a debug build too; the pages cost nothing until used.
    /// let locks = ShmBox::<[ShmMutex<u64>; 1_000_000]>::new_zeroed().unwrap();
    /// *locks[999_999].lock().unwrap() += 1;
    /// let frame = ShmBox::<ShmMutex<[u8; 256 << 20]>>::new_zeroed().unwrap();
    /// frame.lock().unwrap()[200 << 20] = 1;
    /// ```
    pub fn new_zeroed() -> io::Result<Self> {
        ShmBox::new_with(|_| {})
    }

    /// [`new_zeroed`](Self::new_zeroed), then `init` on the value in place, before any child
    /// can be forked to share it.
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new).
    ///
    /// # Panics
    ///
    /// A panic of `init` goes on to the caller; the memory is unmapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, ShmMutex, ShmSafe, ShmZeroable};
    ///
    /// #[derive(ShmSafe, ShmZeroable)]
    /// #[repr(C)]
    /// struct Pool {
    ///     frames: u32,
    ///     bytes: [u8; 64 << 20],
    /// }
    ///
    /// let pool = ShmBox::<ShmMutex<Pool>>::new_with(|m| m.get_mut().unwrap().frames = 16);
    /// assert_eq!(pool.unwrap().lock().unwrap().frames, 16);
    /// ```
    pub fn new_with(init: impl FnOnce(&mut T)) -> io::Result<Self> {
        ShmBox::new_filled(InPlace(init))
    }

    /// [`create`](Self::create) of an all-zero `T`, made in place in the new POSIX segment
    /// `name` (`O_EXCL`, mode `0o600`): only the header's page is written.
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmBox;
    /// let name = format!("/shmsync-doc-create-zeroed-{}", std::process::id());
    /// let table = ShmBox::<[u64; 1 << 20]>::create_zeroed(&name).unwrap();
    /// assert_eq!(table[12345], 0);
    /// ShmBox::<[u64; 1 << 20]>::unlink(&name).unwrap();
    /// ```
    pub fn create_zeroed(name: &str) -> io::Result<Self> {
        ShmBox::create_with(name, |_| {})
    }

    /// [`create_zeroed`](Self::create_zeroed), then `init` on the value in place before any
    /// other process can use it: openers wait (up to the init timeout) until it returns.
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    ///
    /// # Panics
    ///
    /// When `init` panics, the name is unlinked and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, ShmMutex};
    /// let name = format!("/shmsync-doc-create-with-{}", std::process::id());
    /// let ring = ShmBox::<ShmMutex<[u32; 4096]>>::create_with(&name, |m| {
    ///     m.get_mut().unwrap()[0] = 42;
    /// })
    /// .unwrap();
    /// assert_eq!(ShmBox::<ShmMutex<[u32; 4096]>>::open(&name).unwrap().lock().unwrap()[0], 42);
    /// ShmBox::<ShmMutex<[u32; 4096]>>::unlink(&name).unwrap();
    /// # drop(ring);
    /// ```
    pub fn create_with(name: &str, init: impl FnOnce(&mut T)) -> io::Result<Self> {
        ShmOptions::new().create_with(name, init)
    }

    /// Opens `name`, or creates it holding an all-zero `T` made in place.
    ///
    /// # Errors
    ///
    /// As for [`open_or_create`](Self::open_or_create).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::ShmBox;
    /// let name = format!("/shmsync-doc-ooc-zeroed-{}", std::process::id());
    /// let a = ShmBox::<[u8; 1 << 24]>::open_or_create_zeroed(&name).unwrap();
    /// let b = ShmBox::<[u8; 1 << 24]>::open_or_create_zeroed(&name).unwrap();
    /// assert_eq!((a[7], b[7]), (0, 0));
    /// ShmBox::<[u8; 1 << 24]>::unlink(&name).unwrap();
    /// ```
    pub fn open_or_create_zeroed(name: &str) -> io::Result<Self> {
        ShmBox::open_or_create_with(name, |_| {})
    }

    /// Opens `name`, or creates it zeroed and runs `init` on the value in place; among racing
    /// processes `init` runs exactly once, before any of them sees the value, and a creator
    /// that dies inside it is reported as for [`open_or_create`](Self::open_or_create).
    ///
    /// # Errors
    ///
    /// As for [`open_or_create`](Self::open_or_create).
    ///
    /// # Panics
    ///
    /// When `init` panics, the name is unlinked and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use shmsync::ShmBox;
    /// let name = format!("/shmsync-doc-ooc-with-{}", std::process::id());
    /// let init = |v: &mut [AtomicU32; 1024]| *v[0].get_mut() = 1;
    /// let a = ShmBox::open_or_create_with(&name, init).unwrap();
    /// let b = ShmBox::open_or_create_with(&name, |_: &mut [AtomicU32; 1024]| unreachable!());
    /// assert_eq!(b.unwrap()[0].load(Ordering::Relaxed), 1);
    /// ShmBox::<[AtomicU32; 1024]>::unlink(&name).unwrap();
    /// # drop(a);
    /// ```
    pub fn open_or_create_with(name: &str, init: impl FnOnce(&mut T)) -> io::Result<Self> {
        ShmOptions::new().open_or_create_with(name, init)
    }

    /// [`sysv_create`](Self::sysv_create) of an all-zero `T`, made in place.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_create`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, SysvKey};
    /// let b = ShmBox::<[u64; 1 << 20]>::sysv_create_zeroed(SysvKey::Private).unwrap();
    /// assert_eq!(b[1 << 19], 0);
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_create_zeroed(key: SysvKey) -> io::Result<Self> {
        ShmBox::sysv_create_with(key, |_| {})
    }

    /// [`sysv_create_zeroed`](Self::sysv_create_zeroed), then `init` on the value in place
    /// before any other process can use it.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_create`].
    ///
    /// # Panics
    ///
    /// When `init` panics, the segment is removed and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, SysvKey};
    /// let b = ShmBox::<[u16; 8192]>::sysv_create_with(SysvKey::Private, |v| v[1] = 2).unwrap();
    /// assert_eq!(b[1], 2);
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_create_with(key: SysvKey, init: impl FnOnce(&mut T)) -> io::Result<Self> {
        ShmOptions::new().sysv_create_with(key, init)
    }

    /// Opens the System V segment for `key`, or creates it holding an all-zero `T`.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_open_or_create`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, SysvKey};
    /// let key = SysvKey::Key((0x534b_0000 | (std::process::id() & 0xffff)) as _);
    /// let b = ShmBox::<[u8; 1 << 20]>::sysv_open_or_create_zeroed(key).unwrap();
    /// assert_eq!(b[0], 0);
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_open_or_create_zeroed(key: SysvKey) -> io::Result<Self> {
        ShmBox::sysv_open_or_create_with(key, |_| {})
    }

    /// Opens the System V segment for `key`, or creates it zeroed and runs `init` on the
    /// value in place; among racing processes `init` runs exactly once.
    ///
    /// # Errors
    ///
    /// As for [`ShmOptions::sysv_open_or_create`].
    ///
    /// # Panics
    ///
    /// When `init` panics, the segment is removed and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmBox, SysvKey};
    /// let key = SysvKey::Key((0x534c_0000 | (std::process::id() & 0xffff)) as _);
    /// let a = ShmBox::<[u32; 256]>::sysv_open_or_create_with(key, |v| v[0] = 1).unwrap();
    /// let b = ShmBox::<[u32; 256]>::sysv_open_or_create_with(key, |v| v[0] = 2).unwrap();
    /// assert_eq!((a[0], b[0]), (1, 1));
    /// a.sysv_remove().unwrap();
    /// ```
    pub fn sysv_open_or_create_with(key: SysvKey, init: impl FnOnce(&mut T)) -> io::Result<Self> {
        ShmOptions::new().sysv_open_or_create_with(key, init)
    }
}

impl ShmOptions {
    /// [`create`](Self::create) of a `T` made in place: the new segment's zero bytes, then
    /// `init` on them, before any other process can use the value. Pass `|_| {}` to keep it
    /// all zero; only the pages `init` writes (and the header's) are touched.
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    ///
    /// # Panics
    ///
    /// When `init` panics, the name is unlinked and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("/shmsync-doc-opts-create-with-{}", std::process::id());
    /// let opts = shmsync::ShmOptions::new().mode(0o640);
    /// let b = opts.create_with(&name, |v: &mut [u8; 1 << 20]| v[0] = 1).unwrap();
    /// assert_eq!(b[0], 1);
    /// shmsync::unlink(&name).unwrap();
    /// ```
    pub fn create_with<T: ShmZeroable>(
        &self,
        name: &str,
        init: impl FnOnce(&mut T),
    ) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::create_with")?;
        posix::create(self, name, InPlace(init))
    }

    /// [`open_or_create`](Self::open_or_create) of a `T` made in place: a creator runs `init`
    /// on the zero bytes of the new segment; among racing processes it runs exactly once.
    ///
    /// # Errors
    ///
    /// As for [`open_or_create`](Self::open_or_create).
    ///
    /// # Panics
    ///
    /// When `init` panics, the name is unlinked and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("/shmsync-doc-opts-ooc-with-{}", std::process::id());
    /// let opts = shmsync::ShmOptions::new();
    /// let a = opts.open_or_create_with(&name, |v: &mut [u32; 64]| v[0] = 1).unwrap();
    /// let b = opts.open_or_create_with(&name, |v: &mut [u32; 64]| v[0] = 2).unwrap();
    /// assert_eq!((a[0], b[0]), (1, 1));
    /// shmsync::unlink(&name).unwrap();
    /// ```
    pub fn open_or_create_with<T: ShmZeroable>(
        &self,
        name: &str,
        init: impl FnOnce(&mut T),
    ) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::open_or_create_with")?;
        posix::open_or_create(self, name, InPlace(init))
    }

    /// [`sysv_create`](Self::sysv_create) of a `T` made in place, as
    /// [`create_with`](Self::create_with).
    ///
    /// # Errors
    ///
    /// As for [`sysv_create`](Self::sysv_create).
    ///
    /// # Panics
    ///
    /// When `init` panics, the segment is removed and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmOptions, SysvKey};
    /// let b = ShmOptions::new().sysv_create_with(SysvKey::Private, |v: &mut [u8; 4096]| v[9] = 9);
    /// let b = b.unwrap();
    /// assert_eq!(b[9], 9);
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_create_with<T: ShmZeroable>(
        &self,
        key: SysvKey,
        init: impl FnOnce(&mut T),
    ) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::sysv_create_with")?;
        sysv::create(self, key, InPlace(init))
    }

    /// [`sysv_open_or_create`](Self::sysv_open_or_create) of a `T` made in place, as
    /// [`open_or_create_with`](Self::open_or_create_with).
    ///
    /// # Errors
    ///
    /// As for [`sysv_open_or_create`](Self::sysv_open_or_create).
    ///
    /// # Panics
    ///
    /// When `init` panics, the segment is removed and the panic goes on to the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmsync::{ShmOptions, SysvKey};
    /// let key = SysvKey::Key((0x534d_0000 | (std::process::id() & 0xffff)) as _);
    /// let opts = ShmOptions::new();
    /// let b = opts.sysv_open_or_create_with(key, |v: &mut [u64; 512]| v[0] = 5).unwrap();
    /// assert_eq!(b[0], 5);
    /// b.sysv_remove().unwrap();
    /// ```
    pub fn sysv_open_or_create_with<T: ShmZeroable>(
        &self,
        key: SysvKey,
        init: impl FnOnce(&mut T),
    ) -> io::Result<ShmBox<T>> {
        super::segments_supported("ShmOptions::sysv_open_or_create_with")?;
        sysv::open_or_create(self, key, InPlace(init))
    }
}
