//! What the build checks once it has the programs' images and the payload, reported at the
//! manifest's line and key: `Manifest::programs`, `Manifest::check_images`,
//! `Manifest::check_ram`.

mod common;

use manifest::{Manifest, ProgramKind};
use std::collections::BTreeMap;

/// One VM under the shipped servers, as manifests/test-guest.toml has it (written out here so
/// the positions below stay put).
const SYSTEM: &str = r#"[system]
name = "vm"

[servers.supervisor]
binary = "supervisor"
priority = 250
supervisor = true

[servers.memory]
binary = "drv-memory-server"
priority = 180

[servers.mmu]
binary = "mmu-server"
priority = 170

[servers.vmm]
binary = "vmm-server"
priority = 150

[vms.guest]
image = "test-guest"
vmm = "vmm"
mmu = "mmu"
memory = "memory"
priority = 100
ram_size = 0x400_0000

[endpoints.mmu]
server = "mmu"
clients = ["vmm"]

[endpoints.memory]
server = "memory"
clients = ["mmu"]
"#;

fn system(from: &str, to: &str) -> Manifest {
    assert!(SYSTEM.contains(from), "{from}");
    let text = SYSTEM.replacen(from, to, 1);
    Manifest::from_str(&text, "vm.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Every server's image at the server image window, the guest's `guest` (or as given).
fn images(manifest: &Manifest, guest: Vec<u8>) -> BTreeMap<String, Vec<u8>> {
    let mut images: BTreeMap<String, Vec<u8>> = manifest
        .binaries()
        .into_iter()
        .map(|(name, _)| (name, common::elf_at(abi::layout::IMAGE_BASE)))
        .collect();
    images.insert("guest".into(), guest);
    images
}

#[test]
fn programs_are_named_with_their_keys() {
    let manifest = system("", "");
    let programs: Vec<_> = manifest
        .programs()
        .iter()
        .map(|p| (p.owner.as_str(), p.package.as_str(), p.kind, p.key()))
        .collect();
    assert_eq!(programs.len(), 5, "{programs:?}");
    assert_eq!(
        programs[0],
        (
            "supervisor",
            "supervisor",
            ProgramKind::Server,
            "servers.supervisor.binary"
        )
    );
    assert_eq!(
        programs[4],
        ("guest", "test-guest", ProgramKind::Guest, "vms.guest.image")
    );
    let error = manifest.programs()[4].error("why");
    assert_eq!(error.to_string(), "vm.toml:22:9: vms.guest.image: why");
}

#[test]
fn images_where_the_kernel_loads_them_pass() {
    let manifest = system("", "");
    let given = images(&manifest, common::elf_at(0x4008_0000));
    assert_eq!(manifest.check_images(&given), Ok(()));
    assert_eq!(manifest.check_ram(&given, 0x10_0000), Ok(()));
}

#[test]
fn an_image_outside_its_window_is_refused_at_its_key() {
    let manifest = system("", "");
    // A guest linked where the test guest is, given to a server.
    let mut wrong = images(&manifest, common::elf_at(0x4008_0000));
    wrong.insert("vmm".into(), common::elf_at(0x4008_0000));
    let error = manifest.check_images(&wrong).err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "vm.toml:18:10: servers.vmm.binary: the ELF of server `vmm` (package \
             `vmm-server`) has a segment at 0x40080000..0x40080010, outside the server image \
             window (0x200000..0x10000000): servers are linked there by userlib's server.ld"
        )
    );
    // The guest linked for RAM at 0x4000_0000, its VM's RAM moved.
    let moved = system(
        "ram_size = 0x400_0000",
        "ram_size = 0x400_0000\nram_base = 0x8000_0000",
    );
    let given = images(&moved, common::elf_at(0x4008_0000));
    let error = moved.check_images(&given).err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "vm.toml:22:9: vms.guest.image: the ELF of vm `guest` (package `test-guest`) \
             has a segment at 0x40080000..0x40080010, outside the VM's RAM \
             (0x80000000..0x84000000): link the guest inside its VM's RAM, or move ram_base"
        )
    );
    // Not an ELF at all.
    let manifest = system("", "");
    let given = images(&manifest, b"MZ not an ELF".to_vec());
    let error = manifest.check_images(&given).err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "vm.toml:22:9: vms.guest.image: the ELF of vm `guest` (package `test-guest`) \
             is not a little-endian ELF64 AArch64 executable"
        )
    );
}

#[test]
fn the_payload_counts_against_the_machines_ram() {
    let manifest = system("", "");
    let given = images(&manifest, common::elf_at(0x4008_0000));
    // A payload that leaves too little for the guest's 64 MiB: refused at its ram_size.
    let error = manifest.check_ram(&given, 0x3C00_0000).err();
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.starts_with(
            "vm.toml:27:12: vms.guest.ram_size: vm `guest`'s RAM (0x4000000 bytes) does \
             not fit in the machine's RAM"
        ),
        "{error}"
    );
    assert!(
        error.contains("the 0x3c000000 bytes of the kernel image with its payload"),
        "{error}"
    );
    // A payload larger than RAM by itself: refused at the system's name.
    let error = manifest.check_ram(&given, 0x4000_0000).err();
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.starts_with(
            "vm.toml:2:8: system.name: the kernel image with its payload (0x40000000 \
             bytes) does not fit in the machine's RAM"
        ),
        "{error}"
    );
    // Servers' images count too: the same payload fits without them, not with a big one.
    let fits = 0x3B00_0000;
    assert_eq!(manifest.check_ram(&BTreeMap::new(), fits), Ok(()));
    let mut big = given.clone();
    let mut elf = common::elf_at(abi::layout::IMAGE_BASE);
    // memsz of the one segment: 0x0fd0_0000 bytes (the segment's end stays in the window).
    elf[64 + 40..64 + 48].copy_from_slice(&0x0fd0_0000u64.to_le_bytes());
    big.insert("mmu".into(), elf);
    let error = manifest.check_ram(&big, fits).err();
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("servers.mmu: server `mmu`"), "{error}");
    assert!(error.contains("and its image's 0xfd00000 bytes"), "{error}");
}
