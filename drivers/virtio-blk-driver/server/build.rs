//! Links the server at abi::layout::IMAGE_BASE (userlib's server.ld) with defmt's table.
fn main() {
    println!("cargo:rustc-link-arg-bins=-Tserver.ld");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
