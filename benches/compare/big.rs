//! Creating big shared values: `new_zeroed`/`create_zeroed`/`sysv_create_zeroed`/
//! `memfd_create_zeroed`, which touch none of the value's pages, against `ShmBox::new` of a zeroed array of the same size,
//! which builds the value and copies it in (every page written).

use std::hint::black_box;
use std::time::Instant;

use shmsync::{ShmBox, SysvKey};

use crate::{median, print_section, Line, REPS};

/// Creation time in µs of one box made by `make`; the box is dropped after the clock stops.
fn time_us<B>(make: impl FnOnce() -> B) -> f64 {
    let start = Instant::now();
    let made = black_box(make());
    let took = start.elapsed().as_secs_f64() * 1e6;
    drop(made);
    took
}

/// One repetition of every row for a `[u8; N]`: new_zeroed, create_zeroed,
/// sysv_create_zeroed, memfd_create_zeroed, new.
fn repetition<const N: usize>(name: &str) -> [f64; 5] {
    let zeroed = time_us(|| ShmBox::<[u8; N]>::new_zeroed().expect("mmap"));
    let posix = time_us(|| ShmBox::<[u8; N]>::create_zeroed(name).expect("shm_open"));
    shmsync::unlink(name).expect("unlink");
    let mut sysv_id = None;
    let sysv = time_us(|| {
        let b = ShmBox::<[u8; N]>::sysv_create_zeroed(SysvKey::Private).expect("shmget");
        sysv_id = b.sysv_id();
        b
    });
    // SAFETY: IPC_RMID of the segment just made (and detached); it takes no buffer.
    unsafe {
        libc::shmctl(
            sysv_id.expect("an id"),
            libc::IPC_RMID,
            std::ptr::null_mut(),
        )
    };
    let memfd = time_us(|| ShmBox::<[u8; N]>::memfd_create_zeroed("bench").expect("memfd"));
    let moved = time_us(|| ShmBox::new([0u8; N]).expect("mmap"));
    [zeroed, posix, sysv, memfd, moved]
}

/// Every row for one size, `label` naming it.
fn size<const N: usize>(label: &str, lines: &mut Vec<Line>, ratios: &mut Vec<(String, String)>) {
    let name = format!("/shmsync-bench-big-{}", std::process::id());
    let _warm = repetition::<N>(&name);
    let mut samples: [Vec<f64>; 5] = Default::default();
    for _ in 0..REPS {
        for (row, t) in samples.iter_mut().zip(repetition::<N>(&name)) {
            row.push(t);
        }
    }
    let rows = [
        "new_zeroed",
        "create_zeroed",
        "sysv_create_zeroed",
        "memfd_create_zeroed",
        "new([0; N])",
    ];
    for (row, s) in rows.iter().zip(&samples) {
        lines.push(Line {
            name: format!("{label} {row}"),
            value: median(s),
            unit: "µs",
            extra: String::new(),
        });
    }
    // How many times longer the copy takes than each in-place creation.
    for row in &rows[..4] {
        ratios.push((format!("{label} {}", rows[4]), format!("{label} {row}")));
    }
}

pub fn run() {
    // `ShmBox::new` of a 1 GiB array may build it on the stack first (perhaps twice): give
    // it room; the stack is reserved, not touched.
    let section = std::thread::Builder::new()
        .stack_size((5 << 30) / 2)
        .spawn(|| {
            let (mut lines, mut ratios) = (Vec::new(), Vec::new());
            size::<{ 1 << 20 }>("1 MiB", &mut lines, &mut ratios);
            size::<{ 64 << 20 }>("64 MiB", &mut lines, &mut ratios);
            size::<{ 1 << 30 }>("1 GiB", &mut lines, &mut ratios);
            (lines, ratios)
        })
        .expect("a thread");
    let (lines, ratios) = section.join().expect("the big-value rows");
    let ratios: Vec<(&str, &str)> = ratios
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    print_section(
        "Creating a big zeroed value (creation only, µs; release)",
        &lines,
        &ratios,
    );
}
