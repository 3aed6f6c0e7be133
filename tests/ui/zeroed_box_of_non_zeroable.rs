use shmsync::{ShmBox, ShmMutex, ShmSafe};

#[derive(ShmSafe)]
#[repr(C)]
struct NotDeclaredZeroable {
    count: u64,
}

fn main() {
    let _ = ShmBox::<ShmMutex<NotDeclaredZeroable>>::new_zeroed();
    let _ = ShmBox::<NotDeclaredZeroable>::create_with("/x", |_| {});
}
