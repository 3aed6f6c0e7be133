//! Compiles this package (shmsync's sources, and the models) with the namespaced
//! `shmsync_loom` cfg: the same switch users set with `RUSTFLAGS="--cfg shmsync_loom"`.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(shmsync_loom)");
    println!("cargo::rustc-cfg=shmsync_loom");
}
