//! Unit tests of Linux VMs: the `kernel`, `initrd` and `cmdline` keys, the files the build must
//! read, the Image header checks, the layout of the Image, the initrd and the device tree in
//! guest RAM, and every refusal, each at the manifest line and key it concerns.

use super::{decode, fake_elf};
use crate::linux::{ImageHeader, image_header, layout};
use crate::{GuestFile, Manifest, ManifestError};
use bootdesc::{Record, Vm, VmSegment};
use std::collections::BTreeMap;
use std::path::PathBuf;

const MIB: u64 = 1 << 20;

/// A Linux VM (256 MiB at the default base) beside the servers a VM needs.
const LINUX: &str = r#"
[system]
name = "linux"

[servers.boss]
binary = "supervisor"
priority = 200
supervisor = true

[servers.vmm]
binary = "vmm"
priority = 120

[vms.linux]
kernel = "target/guest/linux/Image"
initrd = "target/guest/linux/initramfs.cpio"
vmm = "vmm"
mmu = "boss"
memory = "boss"
priority = 80
ram_size = 0x1000_0000
"#;

/// An arm64 Image of `len` bytes whose header says `text_offset`, `image_size` and `flags`
/// (Linux Documentation/arch/arm64/booting.rst); its other bytes are a pattern.
fn arm64_image(text_offset: u64, image_size: u64, flags: u64, len: usize) -> Vec<u8> {
    let mut image: Vec<u8> = (0..len.max(64)).map(|i| (i % 251) as u8).collect();
    image[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
    image[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
    image[0x18..0x20].copy_from_slice(&flags.to_le_bytes());
    image[0x38..0x3c].copy_from_slice(&0x644d_5241u32.to_le_bytes());
    image
}

/// What Debian's 6.1 Image header says: text_offset 0, flags 0xa (little-endian, 4 KiB pages,
/// placed anywhere); a file shorter than image_size, which counts the bss.
fn debian_like() -> Vec<u8> {
    arm64_image(0, 0x280_0000, 0xa, 0x1f0_0000)
}

fn load(text: &str) -> Manifest {
    Manifest::from_str(text, "linux.toml").unwrap_or_else(|e| panic!("{e}\n{}", e.render(text)))
}

/// Fake ELFs for the servers.
fn server_images(manifest: &Manifest) -> BTreeMap<String, Vec<u8>> {
    manifest
        .binaries()
        .into_iter()
        .map(|(name, _)| (name, fake_elf(1, 100)))
        .collect()
}

fn files(kernel: Vec<u8>, initrd: Option<Vec<u8>>) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::from([(PathBuf::from("target/guest/linux/Image"), kernel)]);
    if let Some(initrd) = initrd {
        files.insert("target/guest/linux/initramfs.cpio".into(), initrd);
    }
    files
}

/// The manifest error a payload build was refused with.
fn refusal(manifest: &Manifest, files: &BTreeMap<PathBuf, Vec<u8>>) -> ManifestError {
    match manifest.payload_with_files(&server_images(manifest), files) {
        Ok(_) => panic!("payload accepted"),
        Err(error) => match error.downcast_ref::<ManifestError>() {
            Some(error) => error.clone(),
            None => panic!("not a manifest error: {error:#}"),
        },
    }
}

/// The one VM record and its segments as (ipa, bytes).
fn vm_and_segments(payload: &[u8]) -> (Vm<'_>, Vec<(u64, &[u8])>) {
    let (header, records) = decode(payload);
    let mut vm = None;
    let mut segments = Vec::new();
    for record in records {
        match record {
            Record::Vm(record) => vm = Some(record),
            Record::VmSegment(VmSegment { vm: 0, image, ipa }) => {
                let bytes = header.image(payload, image);
                segments.push((ipa, bytes.unwrap_or_else(|| panic!("outside"))));
            }
            Record::VmSegment(other) => panic!("a segment of another vm: {other:?}"),
            _ => {}
        }
    }
    (vm.unwrap_or_else(|| panic!("no vm")), segments)
}

#[test]
fn a_linux_vm_names_its_files_and_builds_no_package() {
    let manifest = load(LINUX);
    assert_eq!(manifest.guests(), []);
    let files = manifest.guest_files();
    let found: Vec<_> = files
        .iter()
        .map(|f: &GuestFile| (f.vm.as_str(), f.path.clone(), f.key().to_string()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "linux",
                PathBuf::from("target/guest/linux/Image"),
                "vms.linux.kernel".to_string()
            ),
            (
                "linux",
                PathBuf::from("target/guest/linux/initramfs.cpio"),
                "vms.linux.initrd".to_string()
            ),
        ]
    );
    // A file the build cannot read is reported at the key naming it.
    let error = files[1].error("cannot read it");
    assert_eq!(
        error.to_string(),
        "linux.toml:16:10: vms.linux.initrd: cannot read it"
    );
}

#[test]
fn image_initrd_and_device_tree_are_placed_as_booting_rst_asks() {
    let manifest = load(LINUX);
    let kernel = debian_like();
    let initrd = vec![0x5a; 0x12_3456];
    let payload = manifest
        .payload_with_files(
            &server_images(&manifest),
            &files(kernel.clone(), Some(initrd.clone())),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (vm, segments) = vm_and_segments(&payload);
    let ram_base = 0x4000_0000;
    let tree_at = ram_base + 0x1000_0000 - 2 * MIB;
    // The Image at RAM's base + text_offset (0) is the entry; x0 is the device tree's address.
    assert_eq!((vm.entry, vm.x0), (ram_base, tree_at));
    assert_eq!(segments.len(), 3);
    assert_eq!(segments[0], (ram_base, &kernel[..]));
    // The initrd at image_size (40 MiB) rounded up to 2 MiB: 40 MiB.
    assert_eq!(segments[1], (ram_base + 40 * MIB, &initrd[..]));
    let (at, tree) = segments[2];
    assert_eq!(at, tree_at);
    assert_eq!(tree[..4], 0xd00d_feedu32.to_be_bytes(), "FDT magic");
    assert!(tree.len() as u64 <= 2 * MIB);
    // The tree carries the default command line and the initrd's placement.
    let parsed = fdt::Fdt::new(tree).unwrap_or_else(|e| panic!("{e:?}"));
    let chosen = parsed.chosen();
    assert_eq!(
        chosen.bootargs(),
        Some("console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init panic=-1")
    );
    let property = |name: &str| {
        let node = parsed
            .find_node("/chosen")
            .unwrap_or_else(|| panic!("/chosen"));
        let value = node
            .property(name)
            .unwrap_or_else(|| panic!("{name}"))
            .value;
        let mut word = [0u8; 8];
        word[8 - value.len()..].copy_from_slice(value);
        u64::from_be_bytes(word)
    };
    assert_eq!(property("linux,initrd-start"), ram_base + 40 * MIB);
    assert_eq!(
        property("linux,initrd-end"),
        ram_base + 40 * MIB + initrd.len() as u64
    );
}

#[test]
fn text_offset_a_given_cmdline_and_no_initrd_are_honoured() {
    let text = LINUX
        .replace("initrd = \"target/guest/linux/initramfs.cpio\"\n", "")
        .replace(
            "ram_size = 0x1000_0000",
            "ram_size = 0x400_0000\nram_base = 0x8000_0000",
        )
        .replace(
            "priority = 80\n",
            "priority = 80\ncmdline = \"console=hvc0 quiet\"\n",
        );
    let manifest = load(&text);
    assert_eq!(manifest.guest_files().len(), 1);
    // An old-style Image with text_offset 0x80000 (booting.rst: "text_offset bytes from a 2MB
    // aligned base"), 3 MiB in all.
    let kernel = arm64_image(0x8_0000, 0x30_0000, 0x2, 0x20_0000);
    let payload = manifest
        .payload_with_files(&server_images(&manifest), &files(kernel.clone(), None))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (vm, segments) = vm_and_segments(&payload);
    assert_eq!((vm.entry, vm.x0), (0x8008_0000, 0x8000_0000 + 62 * MIB));
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0], (0x8008_0000, &kernel[..]));
    let parsed = fdt::Fdt::new(segments[1].1).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(parsed.chosen().bootargs(), Some("console=hvc0 quiet"));
    assert!(
        parsed
            .find_node("/chosen")
            .and_then(|n| n.property("linux,initrd-start"))
            .is_none()
    );
}

#[test]
fn the_image_header_is_read_from_its_own_offsets() {
    let header = image_header(&arm64_image(0x8_0000, 0x1234_5000, 0x2, 64));
    assert_eq!(
        header,
        Ok(ImageHeader {
            text_offset: 0x8_0000,
            image_size: 0x1234_5000
        })
    );
    // "Unspecified" page size (flags bits 1-2 = 0) and "placed anywhere" (bit 3) are fine.
    assert!(image_header(&arm64_image(0, 0x1000, 0x8, 64)).is_ok());
}

#[test]
fn images_that_cannot_boot_here_are_refused_with_the_reason() {
    let reason = |bytes: &[u8]| image_header(bytes).err().unwrap_or_default();
    assert!(reason(&arm64_image(0, 0x1000, 0x1, 64)).contains("big-endian"));
    assert!(reason(&arm64_image(0, 0x1000, 0x4, 64)).contains("16 KiB pages"));
    assert!(reason(&arm64_image(0, 0x1000, 0x6, 64)).contains("64 KiB pages"));
    assert!(reason(&arm64_image(0, 0, 0x2, 64)).contains("image_size 0"));
    assert!(reason(&arm64_image(0, 0x1000, 0x2, 64)[..63]).contains("shorter than"));
    let mut bad_magic = arm64_image(0, 0x1000, 0x2, 64);
    bad_magic[0x3b] = 0x65;
    assert!(
        reason(&bad_magic).contains("magic at offset 0x38 is 0x654d5241"),
        "{}",
        reason(&bad_magic)
    );
    assert!(reason(&[0x1f, 0x8b, 8, 0]).contains("gzip"));
}

#[test]
fn a_file_that_is_not_an_image_is_refused_at_the_kernel_key() {
    let manifest = load(LINUX);
    let error = refusal(&manifest, &files(fake_elf(3, 4096), Some(vec![1])));
    assert_eq!(
        (error.line, error.column, error.key.as_str()),
        (15, 10, "vms.linux.kernel")
    );
    assert!(
        error
            .message
            .starts_with("\"target/guest/linux/Image\" is not an arm64 Image"),
        "{error}"
    );
    let big_endian = refusal(&manifest, &files(arm64_image(0, MIB, 0x3, 4096), None));
    assert_eq!(big_endian.key, "vms.linux.kernel");
    assert!(big_endian.message.contains("big-endian"), "{big_endian}");
}

#[test]
fn what_does_not_fit_in_ram_is_refused_at_ram_size_with_the_sizes() {
    let text = LINUX.replace("ram_size = 0x1000_0000", "ram_size = 0x200_0000");
    let manifest = load(&text);
    // image_size 27 MiB: the initrd starts at 28 MiB and its 3 MiB end at 31 MiB, past the
    // device tree's block at 30 MiB.
    let error = refusal(
        &manifest,
        &files(
            arm64_image(0, 0x1b0_0000, 0x2, 4096),
            Some(vec![1; 0x30_0000]),
        ),
    );
    assert_eq!((error.line, error.key.as_str()), (21, "vms.linux.ram_size"));
    assert_eq!(
        error.message,
        "ram_size 0x2000000 (32 MiB) is too small for this Linux guest: its Image takes \
         0x1b00000 bytes from RAM offset 0x0 (text_offset; image_size 0x1b00000), its initrd \
         0x300000 bytes from offset 0x1c00000 (the next 2 MiB boundary), and its device tree \
         the last 2 MiB; it needs ram_size 0x2200000 (34 MiB) or more"
    );
}

#[test]
fn the_layout_fits_exactly_or_not_at_all() {
    let header = ImageHeader {
        text_offset: 0,
        image_size: 3 * MIB,
    };
    // Image 3 MiB -> initrd at 4 MiB, 1 MiB long -> ends at 5 MiB -> device tree at 6 MiB: RAM
    // of 8 MiB fits, 6 MiB does not.
    let fits = layout(0x4000_0000, 8 * MIB, &header, MIB, Some(MIB));
    assert_eq!(
        fits.map(|l| (l.image, l.initrd, l.device_tree)),
        Ok((
            0x4000_0000,
            Some((0x4000_0000 + 4 * MIB, 0x4000_0000 + 5 * MIB)),
            0x4000_0000 + 6 * MIB
        ))
    );
    let short = layout(0x4000_0000, 6 * MIB, &header, MIB, Some(MIB)).unwrap_err();
    assert!(
        short.contains("it needs ram_size 0x800000 (8 MiB)"),
        "{short}"
    );
    // An initrd ending exactly where the device tree's block starts fits.
    let to_the_edge = layout(0, 8 * MIB, &header, MIB, Some(2 * MIB));
    assert_eq!(to_the_edge.map(|l| l.initrd), Ok(Some((4 * MIB, 6 * MIB))));
    assert!(layout(0, 8 * MIB, &header, MIB, Some(2 * MIB + 1)).is_err());
    // A file longer than image_size is all copied: the room it takes is its length.
    let long = layout(0, 8 * MIB, &header, 5 * MIB, None);
    assert_eq!(long.map(|l| l.device_tree), Ok(6 * MIB));
    assert!(layout(0, 8 * MIB, &header, 6 * MIB + 1, None).is_err());
    // A hostile text_offset or image_size overflows nothing.
    let huge = ImageHeader {
        text_offset: u64::MAX,
        image_size: u64::MAX,
    };
    assert!(layout(u64::MAX - 8 * MIB, 8 * MIB, &huge, 64, Some(u64::MAX)).is_err());
}

#[test]
fn an_empty_or_missing_file_is_refused_at_its_key() {
    let manifest = load(LINUX);
    let empty = refusal(&manifest, &files(debian_like(), Some(Vec::new())));
    assert_eq!(
        empty.to_string(),
        "linux.toml:16:10: vms.linux.initrd: the initrd \"target/guest/linux/initramfs.cpio\" is \
         empty"
    );
    let missing = refusal(&manifest, &files(debian_like(), None));
    assert_eq!(missing.key, "vms.linux.initrd");
    assert!(missing.message.contains("gave no bytes"), "{missing}");
    // `payload` alone has no files to give.
    let error = manifest.payload(&server_images(&manifest)).err();
    let error = error.unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        error
            .downcast_ref::<ManifestError>()
            .map(|e| e.key.as_str()),
        Some("vms.linux.kernel")
    );
}

#[test]
fn linux_keys_are_checked_where_they_are_written() {
    let error = |text: &str| match Manifest::from_str(text, "linux.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error.to_string(),
    };
    let long = "x".repeat(crate::COMMAND_LINE_SIZE);
    let cases = [
        (
            LINUX.replace(
                "priority = 80\n",
                &format!("priority = 80\ncmdline = \"{long}\"\n"),
            ),
            "linux.toml:21:11: vms.linux.cmdline: the kernel command line is 2048 bytes; Linux \
             keeps at most 2047",
        ),
        (
            LINUX.replace(
                "priority = 80\n",
                "priority = 80\ncmdline = \"a\\u0000b\"\n",
            ),
            "linux.toml:21:11: vms.linux.cmdline: the kernel command line contains a NUL byte",
        ),
        (
            LINUX.replace("\"target/guest/linux/Image\"", "\"/boot/Image\""),
            "linux.toml:15:10: vms.linux.kernel: kernel path \"/boot/Image\" is absolute; paths \
             are relative to the workspace root",
        ),
        (
            LINUX.replace("\"target/guest/linux/initramfs.cpio\"", "\"\""),
            "linux.toml:16:10: vms.linux.initrd: initrd path \"\" is empty",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(&text), expected);
    }
    // The longest command line Linux keeps is accepted.
    let longest = "x".repeat(crate::COMMAND_LINE_SIZE - 1);
    load(&LINUX.replace(
        "priority = 80\n",
        &format!("priority = 80\ncmdline = \"{longest}\"\n"),
    ));
}
