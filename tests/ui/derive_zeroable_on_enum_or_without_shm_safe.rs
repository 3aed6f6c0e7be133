use shmsync::{ShmSafe, ShmZeroable};

#[derive(ShmSafe, ShmZeroable)]
#[repr(u32)]
enum State {
    Idle = 1,
    Busy = 2,
}

/// Zeroable fields, but the struct is not ShmSafe.
#[derive(ShmZeroable)]
#[repr(C)]
struct NotShared {
    count: u64,
}

fn main() {}
