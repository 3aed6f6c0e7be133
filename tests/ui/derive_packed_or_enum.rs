#[derive(shmsync::ShmSafe)]
#[repr(C, packed)]
struct Packed {
    a: u8,
    b: u64,
}

#[derive(shmsync::ShmSafe)]
#[repr(C)]
enum State {
    Idle,
    Busy,
}

fn main() {}
