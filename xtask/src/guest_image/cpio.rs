//! A writer for the "newc" cpio format, the one the Linux kernel unpacks as an initramfs
//! (Linux Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Each entry is a 110-byte ASCII header (magic `070701`, then thirteen 8-digit hexadecimal
//! fields), the NUL-terminated name padded so that header plus name is a multiple of four bytes,
//! then the data padded to a multiple of four. The archive ends with an entry named
//! `TRAILER!!!`. The kernel creates entries in archive order, so a directory must come before
//! what it holds.

use std::io::Write;

use anyhow::{Context, bail};

/// The magic of a newc header (no checksum; `070702` would carry one).
pub const NEWC_MAGIC: &[u8; 6] = b"070701";
/// The size of a newc header: the magic and 13 fields of 8 hexadecimal digits.
pub const HEADER_LEN: usize = 6 + 13 * 8;
/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// File-type bits of `st_mode` (Linux include/uapi/linux/stat.h).
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFCHR: u32 = 0o020_000;

/// Writes entries of a newc archive; [`CpioWriter::finish`] adds the trailer.
///
/// Every entry is owned by root with mtime 0, so the archive depends only on its contents.
pub struct CpioWriter<W: Write> {
    out: W,
    /// Inode numbers only need to be distinct: the kernel links entries that share one
    /// (init/initramfs.c, `maybe_link`).
    next_inode: u32,
}

/// What one header says beyond the name (the fields we set; the others are zero).
struct Header {
    mode: u32,
    nlink: u32,
    file_size: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out, next_inode: 1 }
    }

    /// A directory, e.g. `dev` (names have no leading slash, as `cpio -H newc` writes them).
    pub fn directory(&mut self, name: &str, permissions: u32) -> anyhow::Result<()> {
        self.entry(name, S_IFDIR | permissions, 2, &[], (0, 0))
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> anyhow::Result<()> {
        self.entry(name, S_IFREG | permissions, 1, data, (0, 0))
    }

    /// A symbolic link to `target` (its data is the target, without a NUL).
    pub fn symlink(&mut self, name: &str, target: &str) -> anyhow::Result<()> {
        if target.is_empty() || target.contains('\0') {
            bail!("cpio: symlink {name} has an empty target or a NUL in it");
        }
        self.entry(name, S_IFLNK | 0o777, 1, target.as_bytes(), (0, 0))
    }

    /// A character device node with the given major and minor numbers.
    pub fn char_device(
        &mut self,
        name: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> anyhow::Result<()> {
        self.entry(name, S_IFCHR | permissions, 1, &[], (major, minor))
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> anyhow::Result<W> {
        self.next_inode = 0;
        self.raw_entry(
            TRAILER,
            &Header {
                mode: 0,
                nlink: 1,
                file_size: 0,
                rdev_major: 0,
                rdev_minor: 0,
            },
            &[],
        )?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        data: &[u8],
        (rdev_major, rdev_minor): (u32, u32),
    ) -> anyhow::Result<()> {
        if name.is_empty() || name == TRAILER || name.starts_with('/') || name.contains('\0') {
            bail!("cpio: bad entry name {name:?}");
        }
        let file_size = u32::try_from(data.len())
            .with_context(|| format!("cpio: {name} is too large for newc (4 GiB)"))?;
        let header = Header {
            mode,
            nlink,
            file_size,
            rdev_major,
            rdev_minor,
        };
        self.raw_entry(name, &header, data)
    }

    fn raw_entry(&mut self, name: &str, header: &Header, data: &[u8]) -> anyhow::Result<()> {
        let name_size = u32::try_from(name.len() + 1).context("cpio: name too long")?;
        let fields = [
            self.next_inode,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            0, // mtime
            header.file_size,
            0, // devmajor
            0, // devminor
            header.rdev_major,
            header.rdev_minor,
            name_size,
            0, // check: zero in 070701 archives
        ];
        let mut bytes = Vec::with_capacity(HEADER_LEN + name.len() + 4 + data.len() + 3);
        bytes.extend_from_slice(NEWC_MAGIC);
        for field in fields {
            bytes.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        pad_to_four(&mut bytes);
        bytes.extend_from_slice(data);
        pad_to_four(&mut bytes);
        self.out.write_all(&bytes)?;
        self.next_inode = self.next_inode.wrapping_add(1);
        Ok(())
    }
}

/// Pads with NULs to a multiple of four. Entries start aligned (each ends padded), so padding
/// the whole buffer pads relative to the archive, as newc requires.
fn pad_to_four(bytes: &mut Vec<u8>) {
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// One entry read back by an independent reader of the format.
    #[derive(Debug, PartialEq)]
    pub struct ParsedEntry {
        pub name: String,
        pub inode: u32,
        pub mode: u32,
        pub nlink: u32,
        pub rdev: (u32, u32),
        pub data: Vec<u8>,
        /// Offset of the header in the archive.
        pub offset: usize,
    }

    /// Parses a whole newc archive, checking magic, padding and that it ends with the trailer.
    pub fn parse(archive: &[u8]) -> Vec<ParsedEntry> {
        let mut entries = Vec::new();
        let mut offset = 0;
        loop {
            assert_eq!(offset % 4, 0, "entry at {offset} is not 4-byte aligned");
            let header = &archive[offset..offset + HEADER_LEN];
            assert_eq!(&header[..6], NEWC_MAGIC, "magic at {offset}");
            let field = |index: usize| {
                let text = std::str::from_utf8(&header[6 + index * 8..14 + index * 8]).unwrap();
                u32::from_str_radix(text, 16).unwrap()
            };
            let name_size = field(11) as usize;
            let name_start = offset + HEADER_LEN;
            let name_bytes = &archive[name_start..name_start + name_size];
            assert_eq!(name_bytes.last(), Some(&0), "name is NUL-terminated");
            let name = std::str::from_utf8(&name_bytes[..name_size - 1])
                .unwrap()
                .to_string();
            let data_start = (name_start + name_size).next_multiple_of(4);
            assert!(
                archive[name_start + name_size..data_start]
                    .iter()
                    .all(|&b| b == 0),
                "name padding is NULs"
            );
            let data_end = data_start + field(6) as usize;
            let next = data_end.next_multiple_of(4);
            assert!(archive[data_end..next].iter().all(|&b| b == 0));
            assert_eq!((field(2), field(3), field(5)), (0, 0, 0), "uid, gid, mtime");
            assert_eq!(field(12), 0, "check field");
            entries.push(ParsedEntry {
                name: name.clone(),
                inode: field(0),
                mode: field(1),
                nlink: field(4),
                rdev: (field(9), field(10)),
                data: archive[data_start..data_end].to_vec(),
                offset,
            });
            offset = next;
            if name == TRAILER {
                assert_eq!(offset, archive.len(), "nothing after the trailer");
                return entries;
            }
        }
    }

    fn tiny_archive() -> Vec<u8> {
        let mut writer = CpioWriter::new(Vec::new());
        writer.directory("dev", 0o755).unwrap();
        writer.char_device("dev/console", 0o600, 5, 1).unwrap();
        writer.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        writer.symlink("sh", "busybox").unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn first_header_is_byte_exact() {
        let archive = tiny_archive();
        // "dev\0" after the 110-byte header is 114 bytes, padded to 116.
        let expected_header = concat!(
            "070701", "00000001", "000041ed", "00000000", "00000000", "00000002", "00000000",
            "00000000", "00000000", "00000000", "00000000", "00000000", "00000004", "00000000",
        );
        assert_eq!(&archive[..HEADER_LEN], expected_header.as_bytes());
        assert_eq!(&archive[HEADER_LEN..HEADER_LEN + 6], b"dev\0\0\0");
        assert_eq!(
            &archive[116..122],
            NEWC_MAGIC,
            "second header right after padding"
        );
    }

    #[test]
    fn tiny_archive_reads_back() {
        let entries = parse(&tiny_archive());
        let names: Vec<_> = entries.iter().map(|entry| entry.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "sh", TRAILER]);

        assert_eq!(entries[0].mode, S_IFDIR | 0o755);
        assert_eq!(entries[0].nlink, 2);
        assert_eq!(entries[1].mode, S_IFCHR | 0o600);
        assert_eq!(entries[1].rdev, (5, 1));
        assert!(entries[1].data.is_empty());
        assert_eq!(entries[2].mode, S_IFREG | 0o755);
        assert_eq!(entries[2].data, b"#!/bin/sh\n");
        assert_eq!(entries[3].mode, S_IFLNK | 0o777);
        assert_eq!(entries[3].data, b"busybox");

        let trailer = entries.last().unwrap();
        assert_eq!((trailer.inode, trailer.mode, trailer.nlink), (0, 0, 1));
        let mut inodes: Vec<_> = entries[..4].iter().map(|entry| entry.inode).collect();
        inodes.dedup();
        assert_eq!(
            inodes.len(),
            4,
            "distinct inodes, or the kernel hard-links them"
        );
    }

    #[test]
    fn data_padding_keeps_every_length_aligned() {
        for length in 0..9 {
            let mut writer = CpioWriter::new(Vec::new());
            let data = vec![0xa5; length];
            writer.file("f", 0o644, &data).unwrap();
            let archive = writer.finish().unwrap();
            let entries = parse(&archive);
            assert_eq!(entries[0].data, data);
            // Header and "f\0" are 112 bytes: the data starts there, the trailer after it.
            assert_eq!(entries[1].offset, (112 + length).next_multiple_of(4));
        }
    }

    #[test]
    fn refuses_names_the_kernel_would_misread() {
        let mut writer = CpioWriter::new(Vec::new());
        assert!(writer.file("", 0o644, b"").is_err());
        assert!(writer.file("/init", 0o755, b"").is_err());
        assert!(writer.file(TRAILER, 0o644, b"").is_err());
        assert!(writer.file("a\0b", 0o644, b"").is_err());
        assert!(writer.symlink("sh", "").is_err());
        let archive = writer.finish().unwrap();
        assert_eq!(parse(&archive).len(), 1, "only the trailer was written");
    }
}
