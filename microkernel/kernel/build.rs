//! Links the kernel at its physical load address and embeds the boot payload.
//!
//! `cargo xtask build` sets `HV_BOOT_PAYLOAD` to the payload compiled from a manifest. A plain
//! `cargo build` gets an empty payload, and such a kernel says so at boot and stops.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        dir.join("kernel.ld").display()
    );
    // defmt's own script: the (non-loaded) .defmt section with the log-string table.
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=kernel.ld");
    println!("cargo:rerun-if-env-changed=HV_BOOT_PAYLOAD");
    if std::env::var_os("HV_BOOT_PAYLOAD").is_none() {
        let empty = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("empty-payload.bin");
        std::fs::write(&empty, []).unwrap();
        println!("cargo:rustc-env=HV_BOOT_PAYLOAD={}", empty.display());
    }
}
