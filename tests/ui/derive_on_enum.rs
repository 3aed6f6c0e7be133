// Enums are refused first, whatever their repr: the repr advice would not help.

#[derive(shmsync::ShmSafe)]
#[repr(u8)]
enum Flag {
    Off,
    On,
}

#[derive(shmsync::ShmSafe)]
enum Plain {
    Idle,
    Busy,
}

fn main() {}
