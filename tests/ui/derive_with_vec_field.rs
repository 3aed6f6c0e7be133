#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Log {
    len: u64,
    lines: Vec<u8>,
}

fn main() {}
