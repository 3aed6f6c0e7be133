// References and lifetime parameters are refused where the derive is, not where the type is
// first placed in shared memory.

#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Named<'a> {
    id: u64,
    name: &'a str,
}

#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Static {
    id: u64,
    names: [&'static str; 2],
}

#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Pointer {
    next: *const u64,
}

#[derive(shmsync::ShmSafe)]
#[repr(C)]
struct Generic<'a, T> {
    value: T,
    borrowed: Option<(u8, &'a mut T)>,
}

fn main() {}
