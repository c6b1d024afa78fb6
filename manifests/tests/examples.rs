//! Every checked-in system manifest must validate and compile: `manifests/*.toml` and, when that
//! directory exists, the QEMU test manifests in `tests/manifests/*.toml` at the workspace root.
//! Also a few valid edge cases the malformed corpus must not be confused with.

mod common;

use manifest::Manifest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn tomls(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .filter(|path| path.file_name().is_some_and(|name| name != "Cargo.toml"))
        .collect();
    files.sort();
    files
}

fn load_or_render(path: &Path) -> Manifest {
    Manifest::load(path).unwrap_or_else(|error| {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        panic!("{error}\n{}", error.render(&source))
    })
}

/// A guest ELF at `entry`.
fn guest_elf(entry: u64) -> Vec<u8> {
    common::elf_at(entry)
}

/// A little-endian arm64 Image header for a kernel of 8 MiB (Linux booting.rst).
fn arm64_image() -> Vec<u8> {
    let mut image = vec![0u8; 4096];
    image[0x10..0x18].copy_from_slice(&(8u64 << 20).to_le_bytes());
    image[0x18..0x20].copy_from_slice(&0xau64.to_le_bytes());
    image[0x38..0x3c].copy_from_slice(&0x644d_5241u32.to_le_bytes());
    image
}

/// Compiles with a minimal ELF per server (in the server image window), a guest ELF inside each ELF guest's RAM (where the test
/// guest links, 512 KiB in), a fake Image and initrd for each Linux VM, and checks the
/// payload's header.
fn assert_compiles(manifest: &Manifest) {
    let ram: BTreeMap<String, u64> = manifest
        .vm_ram()
        .into_iter()
        .map(|(name, base, _)| (name, base))
        .collect();
    let mut images: BTreeMap<String, Vec<u8>> = manifest
        .binaries()
        .into_iter()
        .map(|(name, _)| (name, common::elf_at(abi::layout::IMAGE_BASE)))
        .collect();
    for (vm, _) in manifest.guests() {
        images.insert(vm.clone(), guest_elf(ram[&vm] + 0x8_0000));
    }
    let files: BTreeMap<PathBuf, Vec<u8>> = manifest
        .guest_files()
        .into_iter()
        .map(|file| {
            let bytes = if file.key().ends_with(".kernel") {
                arm64_image()
            } else {
                vec![0x07; 512]
            };
            (file.path, bytes)
        })
        .collect();
    let payload = manifest
        .payload_with_files(&images, &files)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(bootdesc::PayloadHeader::parse(&payload).is_ok());
    // What the build checks once it has the images and the payload.
    manifest
        .check_images(&images)
        .unwrap_or_else(|e| panic!("{e}"));
    manifest
        .check_ram(&images, payload.len() as u64)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn every_checked_in_manifest_validates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = tomls(crate_dir);
    files.extend(tomls(&crate_dir.join("../tests/manifests")));
    assert!(
        files.iter().any(|f| f.ends_with("hello.toml")),
        "hello.toml is missing: {files:?}"
    );
    for path in files {
        assert_compiles(&load_or_render(&path));
    }
}

#[test]
fn hello_has_the_agreed_shape() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hello.toml");
    let hello = load_or_render(&path);
    assert_eq!(hello.name(), "hello");
    assert!(!hello.is_test_system());
    let pairs = [
        ("supervisor", "supervisor"),
        ("pong", "hello-server"),
        ("ping", "hello-client"),
    ];
    let expected: Vec<(String, String)> = pairs
        .iter()
        .map(|(s, b)| (s.to_string(), b.to_string()))
        .collect();
    assert_eq!(hello.binaries(), expected);
}

#[test]
fn valid_edge_cases_are_accepted() {
    let base = "[system]\nname = \"edge\"\n\n[servers.boss]\nbinary = \"b\"\npriority = 254\n\
                supervisor = true\n";
    let cases = [
        // An endpoint with an empty client list, and one with no clients key.
        "[endpoints.idle]\nserver = \"boss\"\nclients = []\n[endpoints.quiet]\nserver = \"boss\"\n",
        // Largest stack and heap, a restart budget on an ordinary server, fault injection in a
        // test system.
        "[servers.w]\nbinary = \"w\"\npriority = 1\nstack = 983040\nheap = 0x3000_0000\n\
         restart = { budget = 2, within_ms = 50 }\ncnode_slots = 4096\n",
        // A RAM region shared by two servers at different addresses, one ending just below the
        // state page (abi::layout::REGION_WINDOW_END); device regions that touch
        // but do not overlap.
        "[servers.a]\nbinary = \"a\"\npriority = 5\n\
         [regions.shm]\nkind = \"ram\"\nsize = 0x2000\nmap = [\
         { server = \"a\", at = 0x4000_0000, rights = \"rw\" },\
         { server = \"boss\", at = 0x7f_ffff_d000, rights = \"r\" }]\n\
         [regions.d1]\nkind = \"device\"\nbase = 0x0A00_0000\nsize = 0x1000\n\
         [regions.d2]\nkind = \"device\"\nbase = 0x0A00_1000\nsize = 0x1000\n",
        // Device regions touching, but not overlapping, what the kernel owns: flash's last
        // page (the GIC distributor follows), the page after the distributor, the page before
        // the redistributors, the page after the kernel's UART, the PCIe ECAM (RAM follows).
        "[regions.flash-end]\nkind = \"device\"\nbase = 0x07FF_F000\nsize = 0x1000\n\
         [regions.after-gicd]\nkind = \"device\"\nbase = 0x0801_0000\nsize = 0x1000\n\
         [regions.before-gicr]\nkind = \"device\"\nbase = 0x0809_F000\nsize = 0x1000\n\
         [regions.after-uart]\nkind = \"device\"\nbase = 0x0900_1000\nsize = 0x1000\n\
         [regions.ecam]\nkind = \"device\"\nbase = 0x3F00_0000\nsize = 0x100_0000\n",
        // Two irqs on one notification, PPI and SPI bounds (QEMU virt's GIC has 256 SPIs), the
        // lines next to the kernel's own (24 below its 25..=27, 28 above them, 32 and 34 around
        // its UART's 33).
        "[notifications.dev]\nwaiter = \"boss\"\n\
         [irqs.timer]\nintid = 16\nnotification = \"dev\"\n\
         [irqs.last]\nintid = 287\nnotification = \"dev\"\nbadge = 2\n\
         [irqs.i24]\nintid = 24\nnotification = \"dev\"\n\
         [irqs.i28]\nintid = 28\nnotification = \"dev\"\n\
         [irqs.i32]\nintid = 32\nnotification = \"dev\"\n\
         [irqs.i34]\nintid = 34\nnotification = \"dev\"\n",
        // Inline-table and dotted-key spellings of the same schema.
        "[servers]\nx = { binary = \"x\", priority = 3 }\ny.binary = \"y\"\ny.priority = 4\n",
        // A VM whose vmm, mmu and memory are one server, named like an endpoint; RAM ending
        // exactly at the top of the guest physical address space, as large as the machine
        // leaves room for beside the kernel and the other servers.
        "[endpoints.g]\nserver = \"boss\"\n\
         [vms.g]\nimage = \"test-guest\"\nvmm = \"boss\"\nmmu = \"boss\"\nmemory = \"boss\"\n\
         priority = 1\nram_base = 0x7f_c040_0000\nram_size = 0x3fc0_0000\n",
    ];
    for (i, extra) in cases.iter().enumerate() {
        let mut text = format!("{base}\n{extra}");
        if i == 1 {
            text = text.replace("name = \"edge\"", "name = \"edge\"\ntest = true");
            text.push_str("inject_fault_at_request = 1\n");
        }
        let manifest = Manifest::from_str(&text, "edge.toml")
            .unwrap_or_else(|e| panic!("case {i}: {e}\n{}", e.render(&text)));
        assert_compiles(&manifest);
    }
}
