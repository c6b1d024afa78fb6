//! Linux VMs: the arm64 Image header, where the Image, the initrd and the device tree go in guest
//! RAM, and the files the build must hand the compiler (docs/LINUX.md, "Booting Linux").
//!
//! Linux Documentation/arch/arm64/booting.rst is the contract: the Image is placed `text_offset`
//! bytes from a 2 MiB aligned base (RAM's base) with `image_size` bytes free from its start, the
//! device tree on an 8-byte boundary and at most 2 MiB, the initrd anywhere in RAM (with RAM at
//! most 1 GiB it always shares a 1 GiB aligned window with the Image). We put the initrd at the
//! first 2 MiB boundary after the Image and the device tree in the last 2 MiB of RAM, its own
//! 2 MiB block, as booting.rst asks ("must not be placed within any 2M region which must be
//! mapped with any specific attributes").

use crate::error::{ManifestError, Reporter};
use crate::span::Span;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The command line of a Linux VM that gives no `cmdline`: the console on the PL011 the vmm
/// emulates at 0x0900_0000 (docs/GUEST-ABI.md), early output there too, the initramfs's
/// `/init`, and a reboot (PSCI SYSTEM_RESET, which the vmm turns into a VM reset) rather than a
/// hang on panic.
pub(crate) const DEFAULT_CMDLINE: &str =
    "console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init panic=-1";

/// The guest's UART: QEMU virt's first PL011 and its SPI, as the vmm emulates it.
pub(crate) const GUEST_PL011: crate::GuestDevice = crate::GuestDevice::Pl011 {
    base: 0x0900_0000,
    spi: 1,
};

/// The granule of the layout: a 2 MiB block.
const BLOCK: u64 = 2 << 20;
/// The Image header's length (booting.rst, "The decompressed kernel image contains a 64-byte
/// header").
const HEADER_LEN: usize = 64;
/// `magic` at offset 0x38: "ARM\x64", little-endian.
const IMAGE_MAGIC: u32 = 0x644d_5241;
/// `flags` bit 0: the kernel is big-endian.
const FLAG_BIG_ENDIAN: u64 = 1 << 0;
/// `flags` bits 1-2: the kernel's page size (0 unspecified, 1 4K, 2 16K, 3 64K).
const FLAG_PAGE_SIZE_SHIFT: u32 = 1;

/// A manifest key's position, kept so that an error found when the file it names is read (long
/// after the manifest was checked) still points at the line and the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyAt(ManifestError);

impl KeyAt {
    /// The position of `key`, whose value is at `span`.
    pub fn new(rep: &Reporter<'_>, span: &Span, key: &str) -> Self {
        Self(rep.error(span, key, String::new()))
    }

    /// The dotted key.
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// An error at this key.
    pub fn error(&self, message: impl Into<String>) -> ManifestError {
        ManifestError {
            message: message.into(),
            ..self.0.clone()
        }
    }
}

/// A file a Linux VM boots from, as its manifest names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestFile {
    /// The VM.
    pub vm: String,
    /// The path as written: relative to the workspace root.
    pub path: PathBuf,
    at: KeyAt,
}

impl GuestFile {
    pub(crate) fn new(vm: &str, path: &str, at: &KeyAt) -> Self {
        Self {
            vm: vm.to_string(),
            path: PathBuf::from(path),
            at: at.clone(),
        }
    }

    /// The dotted key naming it (`vms.linux.kernel`).
    pub fn key(&self) -> &str {
        self.at.key()
    }

    /// An error about the file, at the manifest line and key that name it.
    pub fn error(&self, message: impl Into<String>) -> ManifestError {
        self.at.error(message)
    }
}

/// What the Image header says (booting.rst, "Header notes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ImageHeader {
    /// Where the Image goes from a 2 MiB aligned base.
    pub text_offset: u64,
    /// Bytes from the Image's start the kernel uses (its bss included).
    pub image_size: u64,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reads and checks the header of an arm64 Image: the magic, a little-endian kernel with 4 KiB
/// pages or an unspecified page size, and a non-zero `image_size`. Header fields are
/// little-endian whatever the kernel's endianness.
pub(crate) fn image_header(bytes: &[u8]) -> Result<ImageHeader, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(
            "is gzip-compressed (a vmlinuz); the Image inside it must be \
                    decompressed first"
                .into(),
        );
    }
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(format!(
            "is {} bytes, shorter than an arm64 Image header ({HEADER_LEN} bytes)",
            bytes.len()
        ));
    };
    let magic = u32::from_le_bytes([header[0x38], header[0x39], header[0x3a], header[0x3b]]);
    if magic != IMAGE_MAGIC {
        return Err(format!(
            "is not an arm64 Image: its magic at offset 0x38 is {magic:#010x}, not \
             {IMAGE_MAGIC:#010x} (Linux Documentation/arch/arm64/booting.rst)"
        ));
    }
    let flags = u64_at(header, 0x18);
    if flags & FLAG_BIG_ENDIAN != 0 {
        return Err("is a big-endian kernel (Image flags bit 0); guests boot little-endian".into());
    }
    match (flags >> FLAG_PAGE_SIZE_SHIFT) & 3 {
        0 | 1 => {}
        size => {
            return Err(format!(
                "is built for {} KiB pages (Image flags bits 1-2); a guest here uses 4 KiB pages",
                if size == 2 { 16 } else { 64 }
            ));
        }
    }
    let image_size = u64_at(header, 0x10);
    if image_size == 0 {
        return Err(
            "gives image_size 0: a kernel older than Linux 3.17, whose header does not \
                    say how much memory it needs"
                .into(),
        );
    }
    Ok(ImageHeader {
        text_offset: u64_at(header, 0x08),
        image_size,
    })
}

/// Where a Linux VM's pieces go, as guest-physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinuxLayout {
    /// The Image's first byte: the entry point.
    pub image: u64,
    /// The initrd's [start, end).
    pub initrd: Option<(u64, u64)>,
    /// The device tree: x0 at entry.
    pub device_tree: u64,
}

/// `value` rounded up to a multiple of [`BLOCK`].
fn block_up(value: u128) -> u128 {
    value.div_ceil(u128::from(BLOCK)) * u128::from(BLOCK)
}

/// Lays out the Image (`image_len` bytes of file, `header` from it) at `ram_base +
/// text_offset`, the initrd (`initrd_len` bytes) at the next 2 MiB boundary after the Image's
/// `image_size`, and the device tree in the last 2 MiB of RAM; refuses, with every size, what
/// does not fit in `ram_size`.
pub(crate) fn layout(
    ram_base: u64,
    ram_size: u64,
    header: &ImageHeader,
    image_len: u64,
    initrd_len: Option<u64>,
) -> Result<LinuxLayout, String> {
    // In u128: text_offset and image_size come from the file and may be anything.
    let image_offset = u128::from(header.text_offset);
    // The file is normally shorter than image_size (which counts the bss); never trust less
    // room than the bytes to copy.
    let footprint = u128::from(header.image_size.max(image_len));
    let image_end = image_offset + footprint;
    let initrd_offset = block_up(image_end);
    let used_end = initrd_len.map_or(image_end, |len| initrd_offset + u128::from(len));
    let tree_offset = u128::from(ram_size.saturating_sub(BLOCK));
    if ram_size < BLOCK || used_end > tree_offset {
        let needed = block_up(used_end) + u128::from(BLOCK);
        let initrd = match initrd_len {
            Some(len) => format!(
                ", its initrd {len:#x} bytes from offset {initrd_offset:#x} (the next 2 MiB \
                 boundary)"
            ),
            None => String::new(),
        };
        return Err(format!(
            "ram_size {ram_size:#x} ({} MiB) is too small for this Linux guest: its Image \
             takes {footprint:#x} bytes from RAM offset {image_offset:#x} (text_offset; \
             image_size {:#x}){initrd}, and its device tree the last 2 MiB; it needs \
             ram_size {needed:#x} ({} MiB) or more",
            ram_size >> 20,
            header.image_size,
            needed >> 20
        ));
    }
    // Everything is below tree_offset < ram_size, a u64.
    let at = |offset: u128| ram_base + offset as u64;
    Ok(LinuxLayout {
        image: at(image_offset),
        initrd: initrd_len.map(|len| (at(initrd_offset), at(initrd_offset + u128::from(len)))),
        device_tree: at(tree_offset),
    })
}

/// One Linux VM made ready for the payload: the images to append (the Image, the initrd, the
/// device tree) and where each goes.
pub(crate) struct LinuxLoad<'a> {
    pub images: Vec<std::borrow::Cow<'a, [u8]>>,
    /// Guest-physical address of each of `images`.
    pub ipas: Vec<u64>,
    pub entry: u64,
    pub x0: u64,
}

/// Reads a Linux VM's files from `files` (keyed by the paths its manifest gives), lays them out
/// and writes its device tree (the PL011 and the VM's `devices`). Every refusal is a [`ManifestError`] at the key concerned.
pub(crate) fn prepare<'a>(
    plan: &crate::compile::VmPlan,
    def: &crate::vm::LinuxDef,
    ram_size: u64,
    files: &'a BTreeMap<PathBuf, Vec<u8>>,
) -> Result<LinuxLoad<'a>, ManifestError> {
    let (vm, ram_base) = (plan.name.as_str(), plan.ram_base);
    let file = |(path, at): &(String, KeyAt)| {
        files.get(Path::new(path)).ok_or_else(|| {
            at.error(format!(
                "the build gave no bytes for {path:?} (vm `{vm}`); it must read every file \
                 `Manifest::guest_files` lists"
            ))
        })
    };
    let (kernel_path, kernel_at) = &def.kernel;
    let kernel = file(&def.kernel)?;
    let header =
        image_header(kernel).map_err(|why| kernel_at.error(format!("{kernel_path:?} {why}")))?;
    let initrd = match &def.initrd {
        Some(named @ (path, at)) => {
            let bytes = file(named)?;
            if bytes.is_empty() {
                return Err(at.error(format!("the initrd {path:?} is empty")));
            }
            Some(bytes)
        }
        None => None,
    };
    let placed = layout(
        ram_base,
        ram_size,
        &header,
        kernel.len() as u64,
        initrd.map(|bytes| bytes.len() as u64),
    )
    .map_err(|why| def.ram_size.error(why))?;
    // The PL011, then each virtio-mmio transport in order (Linux numbers the virtio devices
    // virtio0, virtio1, ... in this order).
    let devices: Vec<crate::GuestDevice> = std::iter::once(GUEST_PL011)
        .chain(
            plan.devices
                .iter()
                .map(|device| crate::GuestDevice::VirtioMmio {
                    base: device.base,
                    spi: device.spi,
                }),
        )
        .collect();
    let tree = crate::GuestTree {
        ram_base,
        ram_size,
        cmdline: &def.cmdline,
        initrd: placed.initrd,
        devices: &devices,
    };
    let device_tree = crate::device_tree(&tree).map_err(|why| {
        kernel_at.error(format!(
            "the device tree of vm `{vm}` cannot be written: {why}"
        ))
    })?;
    let mut images = vec![std::borrow::Cow::Borrowed(&kernel[..])];
    let mut ipas = vec![placed.image];
    if let (Some(bytes), Some((start, _))) = (initrd, placed.initrd) {
        images.push(std::borrow::Cow::Borrowed(&bytes[..]));
        ipas.push(start);
    }
    images.push(std::borrow::Cow::Owned(device_tree));
    ipas.push(placed.device_tree);
    Ok(LinuxLoad {
        images,
        ipas,
        entry: placed.image,
        x0: placed.device_tree,
    })
}

impl crate::Manifest {
    /// The files every Linux VM boots from (`kernel`, then `initrd` when given), in VM order:
    /// the build reads each (paths are relative to the workspace root) and hands the bytes to
    /// [`crate::Manifest::payload_with_files`]. A file it cannot read is reported with
    /// [`GuestFile::error`], at the key that names it.
    pub fn guest_files(&self) -> Vec<GuestFile> {
        let mut files = Vec::new();
        for vm in &self.plan.vms {
            if let crate::compile::GuestPlan::Linux(linux) = &vm.guest {
                let (kernel, at) = &linux.kernel;
                files.push(GuestFile::new(&vm.name, kernel, at));
                if let Some((initrd, at)) = &linux.initrd {
                    files.push(GuestFile::new(&vm.name, initrd, at));
                }
            }
        }
        files
    }

    /// [`crate::Manifest::payload`], with the bytes of every file [`Self::guest_files`]
    /// lists, keyed by its path as the manifest gives it. A Linux VM whose files do not boot
    /// (not an arm64 Image, a big-endian one, too big for its RAM) is refused with a
    /// [`ManifestError`] (downcast the error to render it against the manifest's source).
    pub fn payload_with_files(
        &self,
        images: &BTreeMap<String, Vec<u8>>,
        files: &BTreeMap<PathBuf, Vec<u8>>,
    ) -> anyhow::Result<Vec<u8>> {
        crate::payload::build(&self.plan, images, files)
    }
}
