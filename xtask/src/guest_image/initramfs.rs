//! The initramfs of the Linux guest: busybox, the init script and the kernel modules init loads.

use super::cpio::CpioWriter;

/// Where init finds the modules, and the file listing them in load order (dependencies first).
pub const MODULES_DIR: &str = "lib/modules";
pub const LOAD_ORDER: &str = "lib/modules/load-order";

/// The directories of the archive, parents first. The bin directories are where `busybox
/// --install -s` puts each applet's link (it creates no directories); dev, proc, sys are mount
/// points, mnt is for disks.
const DIRECTORIES: [&str; 11] = [
    "bin",
    "sbin",
    "usr",
    "usr/bin",
    "usr/sbin",
    "dev",
    "proc",
    "sys",
    "mnt",
    "lib",
    MODULES_DIR,
];

/// A kernel module to put in the archive, as `lib/modules/<name>.ko`.
pub struct ModuleFile {
    pub name: String,
    pub contents: Vec<u8>,
}

/// The newc archive: `busybox` as /bin/busybox with /bin/sh linked to it (the init script's
/// interpreter; init installs the other applets' links itself), /dev/console, the init script
/// as /init, and the modules with their load order.
pub fn build(
    busybox: &[u8],
    init_script: &[u8],
    modules: &[ModuleFile],
) -> anyhow::Result<Vec<u8>> {
    let mut archive = CpioWriter::new(Vec::new());
    for directory in DIRECTORIES {
        archive.directory(directory, 0o755)?;
    }
    // The kernel opens /dev/console for init's stdin, stdout and stderr before init runs
    // (init/main.c, console_on_rootfs), so the node must be in the archive: devtmpfs is
    // mounted only later, by init.
    archive.char_device("dev/console", 0o600, 5, 1)?;
    archive.file("bin/busybox", 0o755, busybox)?;
    archive.symlink("bin/sh", "busybox")?;
    archive.file("init", 0o755, init_script)?;
    let mut load_order = String::new();
    for module in modules {
        archive.file(
            &format!("{MODULES_DIR}/{}.ko", module.name),
            0o644,
            &module.contents,
        )?;
        load_order.push_str(&module.name);
        load_order.push('\n');
    }
    archive.file(LOAD_ORDER, 0o644, load_order.as_bytes())?;
    archive.finish()
}

#[cfg(test)]
mod tests {
    use super::super::cpio::{S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, tests::parse};
    use super::*;

    #[test]
    fn archive_holds_what_init_needs_parents_first() {
        let modules = [
            ModuleFile {
                name: "virtio_mmio".into(),
                contents: b"\x7fELF-mmio".to_vec(),
            },
            ModuleFile {
                name: "virtio_blk".into(),
                contents: b"\x7fELF-blk".to_vec(),
            },
        ];
        let archive = build(b"BUSYBOX", b"#!/bin/sh\necho hi\n", &modules).unwrap();
        let entries = parse(&archive);
        let find = |name: &str| entries.iter().position(|entry| entry.name == name).unwrap();

        for (index, entry) in entries.iter().enumerate() {
            if let Some((parent, _)) = entry.name.rsplit_once('/') {
                assert!(
                    find(parent) < index,
                    "{} comes before its parent",
                    entry.name
                );
                assert_eq!(entries[find(parent)].mode & 0o170_000, S_IFDIR);
            }
        }
        let console = &entries[find("dev/console")];
        assert_eq!((console.mode, console.rdev), (S_IFCHR | 0o600, (5, 1)));
        let init = &entries[find("init")];
        assert_eq!(init.mode, S_IFREG | 0o755);
        assert_eq!(init.data, b"#!/bin/sh\necho hi\n");
        assert_eq!(entries[find("bin/busybox")].data, b"BUSYBOX");
        let sh = &entries[find("bin/sh")];
        assert_eq!(
            (sh.mode, sh.data.as_slice()),
            (S_IFLNK | 0o777, &b"busybox"[..])
        );
        assert_eq!(
            entries[find("lib/modules/virtio_blk.ko")].data,
            b"\x7fELF-blk"
        );
        assert_eq!(entries[find(LOAD_ORDER)].data, b"virtio_mmio\nvirtio_blk\n");
        for mount_point in ["proc", "sys", "mnt", "usr/sbin"] {
            find(mount_point);
        }
    }
}
