//! What we take from Debian's kernel package: the arm64 Image, its version, and the modules the
//! virtio drivers are built as.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The arm64 Image header's magic, "ARM\x64", and where it sits (Linux
/// Documentation/arch/arm64/booting.rst, "Call the kernel image").
pub const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
pub const IMAGE_MAGIC_OFFSET: usize = 0x38;
/// The header is 64 bytes: code0, code1, text_offset, image_size, flags, three reserved words,
/// the magic and the PE/COFF offset.
pub const IMAGE_HEADER_LEN: usize = 64;

/// The first bytes of a gzip stream (RFC 1952, section 2.3.1).
pub const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// The fields of an arm64 Image header a loader needs (booting.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Where in a 2 MiB-aligned region the Image wants to be placed.
    pub text_offset: u64,
    /// How much memory the kernel occupies from its start, BSS included.
    pub image_size: u64,
    pub flags: u64,
}

/// Reads and checks an arm64 Image header: the magic, and flags bit 0 clear (little-endian
/// kernel, the only kind we boot).
pub fn parse_image_header(image: &[u8]) -> anyhow::Result<ImageHeader> {
    let Some(header) = image.get(..IMAGE_HEADER_LEN) else {
        bail!(
            "{} bytes are too few for an arm64 Image header",
            image.len()
        );
    };
    if &header[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4] != IMAGE_MAGIC {
        bail!("no arm64 Image magic \"ARM\\x64\" at offset 0x38: not an uncompressed arm64 Image");
    }
    let word =
        |offset: usize| u64::from_le_bytes(header[offset..offset + 8].try_into().expect("8 bytes"));
    let parsed = ImageHeader {
        text_offset: word(8),
        image_size: word(16),
        flags: word(24),
    };
    if parsed.flags & 1 != 0 {
        bail!("the Image is a big-endian kernel (header flags bit 0)");
    }
    if parsed.image_size == 0 {
        bail!("the Image header's image_size is 0: a kernel older than 3.17, which we do not load");
    }
    Ok(parsed)
}

/// The uncompressed Image from a /boot/vmlinuz file: Debian's arm64 vmlinuz is the Image itself
/// in bookworm (a signed EFI application) and gzip-compressed in other releases and builds.
pub fn uncompressed_image(vmlinuz: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let image = if vmlinuz.starts_with(GZIP_MAGIC) {
        let mut image = Vec::with_capacity(vmlinuz.len() * 3);
        flate2::read::GzDecoder::new(vmlinuz.as_slice())
            .read_to_end(&mut image)
            .context("decompressing the gzip-compressed kernel")?;
        image
    } else {
        vmlinuz
    };
    parse_image_header(&image)?;
    Ok(image)
}

/// The kernel's directory of modules in an extracted package (`lib/modules/<version>`, or under
/// `usr/` on merged-/usr releases); its name is the version `uname -r` prints.
pub fn modules_dir(extracted: &Path) -> anyhow::Result<(String, PathBuf)> {
    for parent in ["lib/modules", "usr/lib/modules"] {
        let Ok(entries) = std::fs::read_dir(extracted.join(parent)) else {
            continue;
        };
        let versions: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.is_dir())
            .collect();
        match versions.as_slice() {
            [only] => {
                let version = only
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                return Ok((version, only.clone()));
            }
            [] => {}
            _ => bail!(
                "{} holds several kernel versions",
                extracted.join(parent).display()
            ),
        }
    }
    bail!("no lib/modules/<version> in {}", extracted.display())
}

/// How a kernel config option is set (`CONFIG_X=y`, `=m`, or `# CONFIG_X is not set`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Configured {
    BuiltIn,
    Module,
    Absent,
}

pub fn configured(config: &str, option: &str) -> Configured {
    let prefix = format!("{option}=");
    match config.lines().find_map(|line| line.strip_prefix(&prefix)) {
        Some("y") => Configured::BuiltIn,
        Some("m") => Configured::Module,
        _ => Configured::Absent,
    }
}

/// A module's name as the kernel knows it: the file name without `.ko`, `-` read as `_`
/// (modprobe treats them alike).
pub fn module_name(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(".ko")?;
    Some(stem.replace('-', "_"))
}

/// The `depends=` list of a module's `.modinfo` section (NUL-separated `key=value` strings,
/// written by modpost).
pub fn modinfo_depends(modinfo: &[u8]) -> Vec<String> {
    modinfo
        .split(|&byte| byte == 0)
        .filter_map(|entry| entry.strip_prefix(b"depends="))
        .flat_map(|list| list.split(|&byte| byte == b','))
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).replace('-', "_"))
        .collect()
}

/// The `.modinfo` section of a module's ELF file.
pub fn modinfo_section(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(module).context("reading a kernel module's ELF")?;
    let section = file
        .section_by_name(".modinfo")
        .context("kernel module without a .modinfo section")?;
    Ok(section.data()?.to_vec())
}

/// The modules to load so that `wanted` are loaded, dependencies first, each once; built-in
/// ones (`is_builtin`) are left out. `depends_of` gives a module's direct dependencies.
pub fn load_order(
    wanted: &[String],
    is_builtin: &dyn Fn(&str) -> bool,
    depends_of: &mut dyn FnMut(&str) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<Vec<String>> {
    fn visit(
        name: &str,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
        is_builtin: &dyn Fn(&str) -> bool,
        depends_of: &mut dyn FnMut(&str) -> anyhow::Result<Vec<String>>,
    ) -> anyhow::Result<()> {
        if is_builtin(name) || order.iter().any(|done| done == name) {
            return Ok(());
        }
        if path.iter().any(|open| open == name) {
            bail!("module dependency cycle: {} -> {name}", path.join(" -> "));
        }
        path.push(name.to_string());
        for dependency in depends_of(name)? {
            visit(&dependency, path, order, is_builtin, depends_of)?;
        }
        path.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for name in wanted {
        visit(name, &mut Vec::new(), &mut order, is_builtin, depends_of)?;
    }
    Ok(order)
}

/// Every module file under `dir`, by module name. Compressed modules (`.ko.xz`, `.ko.zst`,
/// `.ko.gz`) are listed under their name too, so that needing one gives a clear error.
pub fn index_modules(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
                continue;
            }
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let plain = ["", ".xz", ".zst", ".gz"]
                .iter()
                .find_map(|suffix| file_name.strip_suffix(suffix).and_then(module_name));
            if let Some(name) = plain {
                found.push((name, path));
            }
        }
    }
    Ok(found)
}

/// The names in a `modules.builtin` file (paths like `kernel/drivers/virtio/virtio.ko`).
pub fn builtin_names(modules_builtin: &str) -> Vec<String> {
    modules_builtin
        .lines()
        .filter_map(|line| line.rsplit('/').next().and_then(module_name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: &[u8; 4], flags: u64, image_size: u64) -> Vec<u8> {
        let mut image = vec![0u8; 4096];
        image[8..16].copy_from_slice(&0x0u64.to_le_bytes());
        image[16..24].copy_from_slice(&image_size.to_le_bytes());
        image[24..32].copy_from_slice(&flags.to_le_bytes());
        image[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(magic);
        image
    }

    #[test]
    fn image_header_is_checked_and_read() {
        let parsed = parse_image_header(&header(b"ARM\x64", 0b1010, 0x2a0_0000)).unwrap();
        assert_eq!(parsed.image_size, 0x2a0_0000);
        assert_eq!(parsed.flags, 0b1010);
        assert_eq!(parsed.text_offset, 0);

        assert!(
            parse_image_header(&header(b"ARMd", 0, 1)).is_ok(),
            "0x64 is 'd'"
        );
        assert!(parse_image_header(&header(b"ARM\x65", 0, 1)).is_err());
        assert!(
            parse_image_header(&header(b"ARM\x64", 1, 1)).is_err(),
            "big-endian"
        );
        assert!(
            parse_image_header(&header(b"ARM\x64", 0, 0)).is_err(),
            "pre-3.17"
        );
        assert!(
            parse_image_header(&header(b"ARM\x64", 0, 1)[..63]).is_err(),
            "short"
        );
    }

    #[test]
    fn gzip_compressed_kernels_are_decompressed_and_plain_ones_kept() {
        use std::io::Write;
        let image = header(b"ARM\x64", 0, 0x10_0000);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&image).unwrap();
        let compressed = encoder.finish().unwrap();
        assert_ne!(compressed, image);
        assert_eq!(uncompressed_image(compressed).unwrap(), image);
        assert_eq!(uncompressed_image(image.clone()).unwrap(), image);
        // A gzip stream that holds no Image is refused after decompressing.
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&[0u8; 100]).unwrap();
        assert!(uncompressed_image(encoder.finish().unwrap()).is_err());
    }

    #[test]
    fn config_options_are_matched_whole() {
        let config = "CONFIG_VIRTIO=y\nCONFIG_VIRTIO_MMIO=m\n# CONFIG_VIRTIO_IOMMU is not set\n";
        assert_eq!(configured(config, "CONFIG_VIRTIO"), Configured::BuiltIn);
        assert_eq!(configured(config, "CONFIG_VIRTIO_MMIO"), Configured::Module);
        assert_eq!(
            configured(config, "CONFIG_VIRTIO_IOMMU"),
            Configured::Absent
        );
        assert_eq!(configured(config, "CONFIG_VIRT"), Configured::Absent);
    }

    #[test]
    fn modinfo_depends_is_split_and_normalised() {
        let modinfo = b"license=GPL\0depends=virtio_ring,virtio-core\0vermagic=6.1.0\0";
        assert_eq!(modinfo_depends(modinfo), ["virtio_ring", "virtio_core"]);
        assert!(modinfo_depends(b"license=GPL\0depends=\0").is_empty());
        assert_eq!(
            builtin_names("kernel/drivers/virtio/virtio.ko\nkernel/a/b-c.ko\n"),
            ["virtio", "b_c"]
        );
    }

    #[test]
    fn load_order_puts_dependencies_first_once_and_skips_builtins() {
        let graph = |name: &str| -> Vec<String> {
            let depends: &[&str] = match name {
                "virtio_blk" => &["virtio_ring", "virtio"],
                "virtio_mmio" => &["virtio_ring", "virtio"],
                "virtio_ring" => &["virtio"],
                _ => &[],
            };
            depends.iter().map(|name| name.to_string()).collect()
        };
        let wanted = ["virtio_mmio".to_string(), "virtio_blk".to_string()];
        let order = load_order(&wanted, &|_| false, &mut |name| Ok(graph(name))).unwrap();
        assert_eq!(
            order,
            ["virtio", "virtio_ring", "virtio_mmio", "virtio_blk"]
        );
        let order = load_order(
            &wanted,
            &|name| name.starts_with("virtio_r") || name == "virtio",
            &mut |name| Ok(graph(name)),
        )
        .unwrap();
        assert_eq!(order, ["virtio_mmio", "virtio_blk"]);

        let cycle = load_order(&["a".to_string()], &|_| false, &mut |name| {
            Ok(vec![if name == "a" { "b" } else { "a" }.to_string()])
        });
        assert!(cycle.unwrap_err().to_string().contains("a -> b -> a"));
    }
}
