#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Loud {
    value: u64,
}

impl Drop for Loud {
    fn drop(&mut self) {}
}

fn main() {}
