use shmsync::{ShmBox, ShmSafe};

#[repr(C)]
struct Loud {
    value: u64,
}

impl Drop for Loud {
    fn drop(&mut self) {}
}

// SAFETY: deliberately wrong (Loud has a destructor); ShmBox must refuse to compile it.
unsafe impl ShmSafe for Loud {}

fn main() {
    let _ = ShmBox::new(Loud { value: 1 });
}
