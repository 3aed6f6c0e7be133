//! Sharing memory and mutexes with existing C programs.
//!
//! - [`CMutex<T>`]: a C program's `pthread_mutex_t` followed by the data it guards, in C's
//!   layout (`#[repr(C)] { pthread_mutex_t, T }`), so that a Rust struct mirrors the C struct
//!   field for field. Join a mutex the C side initialised, or initialise one (robust or not,
//!   with priority inheritance or not). A holder's death, in C or in Rust, reaches the next
//!   locker as `Err(PoisonError)` with a guard, and recovery is glibc's
//!   (`pthread_mutex_consistent`), which C peers understand.
//! - [`ForeignSegment`]: a segment without a shmsync header — System V by key or id, POSIX by
//!   name, or a file descriptor — mapped whole, with typed access checked for size and
//!   alignment (and `unsafe` where the bytes cannot be checked).
//!
//! The pthread-backend [`ShmMutex`](crate::pthread::ShmMutex) cannot do this: it keeps an
//! init word before its `pthread_mutex_t` and a poison word after it, so its layout never
//! matches a C struct.
//!
//! # Examples
//!
//! A Rust process joining the classic C writer's segment (`examples/c/writer.c`):
//!
//! ```no_run
//! use shmsync::interop::{CMutex, CMutexGuard, ForeignSegment};
//! use shmsync::{ShmOptions, ShmSafe, SysvKey};
//!
//! // struct shared { pthread_mutex_t lock; int counter; char text[64]; };
//! #[derive(ShmSafe)]
//! #[repr(C)]
//! struct Shared {
//!     counter: i32,
//!     text: [u8; 64],
//! }
//!
//! let key = SysvKey::ftok("/tmp/shmsync-c-demo", b'R')?;
//! let opts = ShmOptions::new().allow_group_or_other_write(true); // C made it 0666
//! let seg = ForeignSegment::sysv_open(key, &opts)?;
//! // SAFETY: the C writer initialised the mutex PTHREAD_PROCESS_SHARED and ROBUST (not
//! // recursive), and every process touches `counter` and `text` only under it.
//! let shared: &CMutex<Shared> = unsafe { seg.get_unchecked(0)? };
//! let mut guard = match shared.lock()? {
//!     Ok(guard) => guard,
//!     Err(poisoned) => {
//!         // A holder died mid-update: repair, then say so.
//!         let mut guard = poisoned.into_inner();
//!         guard.text = [0; 64];
//!         CMutexGuard::mark_consistent(&mut guard);
//!         guard
//!     }
//! };
//! guard.counter += 1;
//! # Ok::<(), std::io::Error>(())
//! ```

mod c_mutex;

pub use c_mutex::{CMutex, CMutexGuard, CMutexOptions};
pub use crate::region::ForeignSegment;
