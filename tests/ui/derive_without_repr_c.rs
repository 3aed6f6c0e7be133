#[derive(shmsync::ShmSafe)]
struct Counter {
    hits: u64,
    misses: u64,
}

fn main() {}
