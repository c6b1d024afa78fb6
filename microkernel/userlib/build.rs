//! Puts `server.ld` on the linker search path of every server (link-search paths propagate to
//! dependents); each server's own build script passes `-Tserver.ld`.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-search={dir}");
    println!("cargo:rerun-if-changed=server.ld");
}
