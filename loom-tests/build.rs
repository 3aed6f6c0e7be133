//! Compiles this crate with the namespaced `shmsync_loom` cfg, under which the backend
//! sources it includes leave out what only holds for native atomics (size assertions).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(shmsync_loom)");
    println!("cargo::rustc-cfg=shmsync_loom");
}
