use shmsync::{ShmSafe, ShmZeroable};

/// A tag whose zero is not a value: ShmSafe, but not ShmZeroable.
#[repr(C)]
struct NonZeroTag(u32);

// SAFETY: one integer field, repr(C), no destructor.
unsafe impl ShmSafe for NonZeroTag {}

#[derive(ShmSafe, ShmZeroable)]
#[repr(C)]
struct Tagged {
    count: u64,
    tag: NonZeroTag,
}

fn main() {}
