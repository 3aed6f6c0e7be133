//! The safe placement functions refuse pthread-backend primitives (the `MmapMut` could be
//! unmapped while glibc's robust list points into it) and types whose bytes cannot be checked.
use shmsync::{ShmRef, ShmSafe};

#[repr(C)]
struct ByHand(u32);
// SAFETY: one plain integer, repr(C), no destructor; keeps the default `Unchecked` patterns.
unsafe impl ShmSafe for ByHand {}

fn main() {
    let mut map = memmap2::MmapMut::map_anon(4096).unwrap();
    let _ = ShmRef::init_in(&mut map, 0, shmsync::pthread::ShmMutex::new(0u8));
    let _ = ShmRef::<shmsync::pthread::ShmMutex<u8>>::attach_in(&mut map, 0);
    let _ = ShmRef::<ByHand>::attach_in(&mut map, 0);
}
