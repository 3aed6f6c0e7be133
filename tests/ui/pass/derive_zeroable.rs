use shmsync::{ShmBox, ShmCondvar, ShmMutex, ShmSafe, ShmZeroable};

#[derive(ShmSafe, ShmZeroable)]
#[repr(C)]
struct Slots<T, const N: usize> {
    len: u32,
    slots: [T; N],
}

#[derive(ShmSafe, ShmZeroable)]
#[repr(C)]
struct Channel {
    ring: ShmMutex<Slots<(u64, bool), 4096>>,
    not_empty: ShmCondvar,
}

fn main() {
    let channel = ShmBox::<Channel>::new_with(|c| c.ring.get_mut().unwrap().len = 1).unwrap();
    assert_eq!(channel.ring.lock().unwrap().len, 1);
    assert!(!channel.ring.lock().unwrap().slots[4095].1);
}
