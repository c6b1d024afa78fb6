//! The initramfs of the Linux guest: busybox, the init script, the test scripts init runs on
//! request (`linux-init.test=NAME` runs `/tests/NAME.sh`) and the kernel modules init loads.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::cpio::CpioWriter;

/// Where init finds the modules, and the file listing them in load order (dependencies first).
pub const MODULES_DIR: &str = "lib/modules";
pub const LOAD_ORDER: &str = "lib/modules/load-order";

/// Where the test scripts go: `/tests/<file name>`, from `tests/linux/tests/` of the workspace.
pub const TESTS_DIR: &str = "tests";

/// The directories of the archive, parents first. The bin directories are where `busybox
/// --install -s` puts each applet's link (it creates no directories); dev, proc, sys are mount
/// points, mnt is for disks.
const DIRECTORIES: [&str; 12] = [
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
    TESTS_DIR,
];

/// A kernel module to put in the archive, as `lib/modules/<name>.ko`.
pub struct ModuleFile {
    pub name: String,
    pub contents: Vec<u8>,
}

/// A test script to put in the archive, as `tests/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestScript {
    pub name: String,
    pub contents: Vec<u8>,
}

/// The test scripts in `dir` (`tests/linux/tests/`), by name: every regular file. No directory
/// means no scripts.
pub fn read_test_scripts(dir: &Path) -> anyhow::Result<Vec<TestScript>> {
    let mut scripts = Vec::new();
    for path in test_script_files(dir)? {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{}: the name is not UTF-8", path.display()))?
            .to_string();
        let contents =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        scripts.push(TestScript { name, contents });
    }
    Ok(scripts)
}

/// What the archive is made from in `dir`: the directory itself (its time changes when a script
/// is added or removed) and each script; nothing when there is no directory.
pub fn test_script_inputs(dir: &Path) -> Vec<PathBuf> {
    if !dir.is_dir() {
        return Vec::new();
    }
    let files = test_script_files(dir).unwrap_or_default();
    std::iter::once(dir.to_path_buf()).chain(files).collect()
}

/// The regular files of `dir`, sorted (none when it does not exist).
fn test_script_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The newc archive: `busybox` as /bin/busybox with /bin/sh linked to it (the init script's
/// interpreter; init installs the other applets' links itself), /dev/console, the init script
/// as /init, the test scripts in /tests, and the modules with their load order.
pub fn build(
    busybox: &[u8],
    init_script: &[u8],
    tests: &[TestScript],
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
    for script in tests {
        archive.file(
            &format!("{TESTS_DIR}/{}", script.name),
            0o755,
            &script.contents,
        )?;
    }
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
        let tests = [TestScript {
            name: "disk.sh".into(),
            contents: b"#!/bin/sh\necho disk\n".to_vec(),
        }];
        let archive = build(b"BUSYBOX", b"#!/bin/sh\necho hi\n", &tests, &modules).unwrap();
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
        let disk = &entries[find("tests/disk.sh")];
        assert_eq!(
            (disk.mode, disk.data.as_slice()),
            (S_IFREG | 0o755, &b"#!/bin/sh\necho disk\n"[..])
        );
        for mount_point in ["proc", "sys", "mnt", "usr/sbin"] {
            find(mount_point);
        }
    }

    #[test]
    fn test_scripts_are_the_files_of_their_directory_and_their_inputs() {
        let dir = std::env::temp_dir().join(format!("initramfs-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            read_test_scripts(&dir).unwrap(),
            [],
            "no directory, no scripts"
        );
        assert!(test_script_inputs(&dir).is_empty());
        std::fs::create_dir_all(dir.join("not-a-script")).unwrap();
        std::fs::write(dir.join("reboot.sh"), b"r").unwrap();
        std::fs::write(dir.join("disk.sh"), b"d").unwrap();
        let scripts = read_test_scripts(&dir).unwrap();
        let names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["disk.sh", "reboot.sh"]);
        assert_eq!(scripts[0].contents, b"d");
        assert_eq!(
            test_script_inputs(&dir),
            [dir.clone(), dir.join("disk.sh"), dir.join("reboot.sh")]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
