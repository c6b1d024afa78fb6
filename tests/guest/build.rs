//! Links the test guest at its load address in guest RAM (`guest.ld`, 0x4008_0000 per
//! docs/GUEST-ABI.md). The absolute path keeps the link independent of the working directory.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        dir.join("guest.ld").display()
    );
    println!("cargo:rerun-if-changed=guest.ld");
}
