//! A strict ELF64 reader for server images: just enough to load `PT_LOAD` segments.
//!
//! Images come from the boot payload, built by our own tools, but the loader still checks
//! every field it uses (bounds, overlap, the load window, the entry point): a damaged image is
//! refused at boot with the reason, never half-loaded. Reference: the System V gABI, ELF-64
//! Object File Format 1.5, and the AArch64 ELF ABI (EM_AARCH64 = 183).

/// Most `PT_LOAD` segments an image may have (the kernel keeps a fixed record per segment so a
/// restart can reload it).
pub const MAX_SEGMENTS: usize = 8;

const PT_LOAD: u32 = 1;
const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PAGE: u64 = 4096;

/// One loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Segment {
    /// Where it is loaded.
    pub vaddr: u64,
    /// Its size in memory (the tail beyond `filesz` is zero).
    pub memsz: u64,
    /// Where its bytes are in the file.
    pub offset: u64,
    /// How many bytes come from the file.
    pub filesz: u64,
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
}

impl Segment {
    /// First page address.
    pub const fn page_start(&self) -> u64 {
        self.vaddr & !(PAGE - 1)
    }

    /// One past the last page address.
    pub const fn page_end(&self) -> u64 {
        (self.vaddr + self.memsz).next_multiple_of(PAGE)
    }
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not a little-endian ELF64 AArch64 executable.
    NotAarch64Executable,
    /// A header or table reaches past the end of the file.
    Truncated,
    /// A segment's file size exceeds its memory size.
    FileLargerThanMemory,
    /// A segment lies outside the load window.
    OutsideWindow,
    /// Two segments share a page.
    Overlap,
    /// More than [`MAX_SEGMENTS`] loadable segments.
    TooManySegments,
    /// The entry point is not inside an executable segment.
    BadEntry,
}

/// A validated image.
#[derive(Clone, Copy, Debug)]
pub struct ElfImage {
    /// The entry point.
    pub entry: u64,
    /// The loadable segments, sorted by address.
    pub segments: [Segment; MAX_SEGMENTS],
    /// How many of `segments` are used.
    pub segment_count: usize,
}

impl Segment {
    /// The part of this segment's file bytes that lands in `[chunk_start, chunk_end)` (guest
    /// addresses): `(file offset, guest address, length)`, or `None` when none does. Loading an
    /// image chunk by chunk, each chunk zeroed first, copies every file byte exactly once.
    pub fn file_bytes_in(&self, chunk_start: u64, chunk_end: u64) -> Option<(u64, u64, u64)> {
        let start = self.vaddr.max(chunk_start);
        let end = self.vaddr.saturating_add(self.filesz).min(chunk_end);
        (start < end).then(|| (self.offset + (start - self.vaddr), start, end - start))
    }
}

impl ElfImage {
    /// The used segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.segment_count]
    }
}

fn read<const N: usize>(bytes: &[u8], at: u64) -> Result<[u8; N], ElfError> {
    let start = usize::try_from(at).map_err(|_| ElfError::Truncated)?;
    let end = start.checked_add(N).ok_or(ElfError::Truncated)?;
    bytes
        .get(start..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(ElfError::Truncated)
}
fn u16_at(bytes: &[u8], at: u64) -> Result<u16, ElfError> {
    read::<2>(bytes, at).map(u16::from_le_bytes)
}
fn u32_at(bytes: &[u8], at: u64) -> Result<u32, ElfError> {
    read::<4>(bytes, at).map(u32::from_le_bytes)
}
fn u64_at(bytes: &[u8], at: u64) -> Result<u64, ElfError> {
    read::<8>(bytes, at).map(u64::from_le_bytes)
}

/// Parses and validates `bytes`, requiring every segment inside `window_start..window_end`.
pub fn parse(bytes: &[u8], window_start: u64, window_end: u64) -> Result<ElfImage, ElfError> {
    let ident: [u8; 8] = read(bytes, 0)?;
    if ident[..4] != *b"\x7fELF" || ident[4] != 2 || ident[5] != 1 || ident[6] != 1 {
        return Err(ElfError::NotAarch64Executable);
    }
    if u16_at(bytes, 16)? != ET_EXEC || u16_at(bytes, 18)? != EM_AARCH64 {
        return Err(ElfError::NotAarch64Executable);
    }
    let entry = u64_at(bytes, 24)?;
    let table = u64_at(bytes, 32)?;
    let entry_size = u64::from(u16_at(bytes, 54)?);
    let count = u64::from(u16_at(bytes, 56)?);
    if entry_size < 56 {
        return Err(ElfError::Truncated);
    }
    let mut image = ElfImage {
        entry,
        segments: [Segment::default(); MAX_SEGMENTS],
        segment_count: 0,
    };
    for index in 0..count {
        let header = table
            .checked_add(index * entry_size)
            .ok_or(ElfError::Truncated)?;
        if u32_at(bytes, header)? != PT_LOAD {
            continue;
        }
        let flags = u32_at(bytes, header + 4)?;
        let segment = Segment {
            offset: u64_at(bytes, header + 8)?,
            vaddr: u64_at(bytes, header + 16)?,
            filesz: u64_at(bytes, header + 32)?,
            memsz: u64_at(bytes, header + 40)?,
            writable: flags & PF_W != 0,
            executable: flags & PF_X != 0,
        };
        if segment.memsz == 0 {
            continue;
        }
        if segment.filesz > segment.memsz {
            return Err(ElfError::FileLargerThanMemory);
        }
        let file_end = segment
            .offset
            .checked_add(segment.filesz)
            .ok_or(ElfError::Truncated)?;
        if file_end > bytes.len() as u64 {
            return Err(ElfError::Truncated);
        }
        let end = segment
            .vaddr
            .checked_add(segment.memsz)
            .ok_or(ElfError::OutsideWindow)?;
        if segment.vaddr < window_start || end > window_end {
            return Err(ElfError::OutsideWindow);
        }
        let slot = image
            .segments
            .get_mut(image.segment_count)
            .ok_or(ElfError::TooManySegments)?;
        *slot = segment;
        image.segment_count += 1;
    }
    let used = &mut image.segments[..image.segment_count];
    used.sort_unstable_by_key(|segment| segment.vaddr);
    if used
        .windows(2)
        .any(|pair| pair[0].page_end() > pair[1].page_start())
    {
        return Err(ElfError::Overlap);
    }
    let entry_ok = used.iter().any(|segment| {
        segment.executable && entry >= segment.vaddr && entry < segment.vaddr + segment.memsz
    });
    if !entry_ok {
        return Err(ElfError::BadEntry);
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_see_exactly_their_part_of_a_segment() {
        let segment = Segment {
            vaddr: 0x4008_0000,
            memsz: 0x3000,
            offset: 0x1000,
            filesz: 0x2800,
            writable: false,
            executable: true,
        };
        // A chunk covering the start, one in the middle, one past the file bytes, one before.
        assert_eq!(
            segment.file_bytes_in(0x4000_0000, 0x4008_1000),
            Some((0x1000, 0x4008_0000, 0x1000))
        );
        assert_eq!(
            segment.file_bytes_in(0x4008_1000, 0x4008_2000),
            Some((0x2000, 0x4008_1000, 0x1000))
        );
        assert_eq!(
            segment.file_bytes_in(0x4008_2000, 0x4008_4000),
            Some((0x3000, 0x4008_2000, 0x800))
        );
        assert_eq!(segment.file_bytes_in(0x4008_2800, 0x4008_4000), None);
        assert_eq!(segment.file_bytes_in(0x4000_0000, 0x4008_0000), None);
        // Every byte exactly once over any chunking.
        for chunk in [0x100u64, 0x1000, 0x1234, 0x20_0000] {
            let mut covered = 0;
            let mut at = 0x4000_0000;
            while at < 0x4010_0000 {
                if let Some((offset, address, len)) = segment.file_bytes_in(at, at + chunk) {
                    assert_eq!(offset - 0x1000, address - 0x4008_0000);
                    covered += len;
                }
                at += chunk;
            }
            assert_eq!(covered, 0x2800, "chunk {chunk:#x}");
        }
    }
    use std::vec::Vec;

    /// Builds a minimal ELF with the given (vaddr, memsz, filesz, flags) segments.
    fn build(entry: u64, segments: &[(u64, u64, u64, u32)]) -> Vec<u8> {
        let mut elf = std::vec![0u8; 64];
        elf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
        elf[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        elf[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        elf[24..32].copy_from_slice(&entry.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        let data_start = 64 + 56 * segments.len() as u64;
        for &(vaddr, memsz, filesz, flags) in segments {
            let mut header = [0u8; 56];
            header[..4].copy_from_slice(&PT_LOAD.to_le_bytes());
            header[4..8].copy_from_slice(&flags.to_le_bytes());
            header[8..16].copy_from_slice(&data_start.to_le_bytes());
            header[16..24].copy_from_slice(&vaddr.to_le_bytes());
            header[32..40].copy_from_slice(&filesz.to_le_bytes());
            header[40..48].copy_from_slice(&memsz.to_le_bytes());
            elf.extend_from_slice(&header);
        }
        elf.resize(elf.len() + 0x2000, 0xAA);
        elf
    }

    const WINDOW: (u64, u64) = (0x20_0000, 0x1000_0000);

    #[test]
    fn accepts_a_well_formed_image_and_sorts_segments() {
        let elf = build(
            0x20_0010,
            &[
                (0x20_1000, 0x800, 0x10, PF_W),
                (0x20_0000, 0x100, 0x100, PF_X),
            ],
        );
        let image = parse(&elf, WINDOW.0, WINDOW.1).unwrap();
        assert_eq!(image.entry, 0x20_0010);
        assert_eq!(image.segments().len(), 2);
        assert_eq!(image.segments()[0].vaddr, 0x20_0000);
        assert!(image.segments()[1].writable);
    }

    #[test]
    fn every_field_is_read_from_its_own_place_and_flags_are_separate() {
        let elf = build(
            0x20_0010,
            &[
                (0x20_0000, 0x100, 0x100, PF_X),
                (0x20_1000, 0x800, 0x10, PF_W),
            ],
        );
        let data_start = 64 + 2 * 56;
        let image = parse(&elf, WINDOW.0, WINDOW.1).unwrap();
        assert_eq!(
            image.segments(),
            [
                Segment {
                    vaddr: 0x20_0000,
                    memsz: 0x100,
                    offset: data_start,
                    filesz: 0x100,
                    writable: false,
                    executable: true,
                },
                Segment {
                    vaddr: 0x20_1000,
                    memsz: 0x800,
                    offset: data_start,
                    filesz: 0x10,
                    writable: true,
                    executable: false,
                },
            ]
        );
    }

    #[test]
    fn every_identification_field_is_checked_on_its_own() {
        let good = build(0x20_0000, &[(0x20_0000, 0x100, 0x100, PF_X)]);
        // Magic, class (ELF64), data (little-endian), version, type (executable).
        for (index, value) in [(0, 0), (3, b'G'), (4, 1), (5, 2), (6, 0), (16, 3)] {
            let mut elf = good.clone();
            elf[index] = value;
            assert_eq!(
                parse(&elf, WINDOW.0, WINDOW.1).unwrap_err(),
                ElfError::NotAarch64Executable,
                "byte {index} = {value}"
            );
        }
    }

    #[test]
    fn limits_are_inclusive_where_the_format_allows() {
        let fine = |elf: &[u8]| parse(elf, WINDOW.0, WINDOW.1).map(|image| image.entry);
        // File bytes may end exactly at the end of the file (`build` appends 0x2000 bytes).
        let to_the_last_byte = build(0x20_0000, &[(0x20_0000, 0x2000, 0x2000, PF_X)]);
        assert_eq!(fine(&to_the_last_byte), Ok(0x20_0000));
        let one_short = &to_the_last_byte[..to_the_last_byte.len() - 1];
        assert_eq!(fine(one_short), Err(ElfError::Truncated));
        // Memory may end exactly at the end of the window.
        let top = WINDOW.1 - 0x1000;
        assert_eq!(fine(&build(top, &[(top, 0x1000, 0, PF_X)])), Ok(top));
        assert_eq!(
            fine(&build(top, &[(top, 0x1001, 0, PF_X)])),
            Err(ElfError::OutsideWindow)
        );
        // The entry may be the segment's last byte, not one past it.
        assert_eq!(
            fine(&build(0x20_00ff, &[(0x20_0000, 0x100, 0, PF_X)])),
            Ok(0x20_00ff)
        );
        assert_eq!(
            fine(&build(0x20_0100, &[(0x20_0000, 0x100, 0, PF_X)])),
            Err(ElfError::BadEntry)
        );
        // Program headers may be larger than the 56 bytes we read, never smaller.
        let mut larger = build(0x20_0000, &[(0x20_0000, 0x100, 0x100, PF_X)]);
        larger[54..56].copy_from_slice(&64u16.to_le_bytes());
        assert_eq!(fine(&larger), Ok(0x20_0000));
        larger[54..56].copy_from_slice(&40u16.to_le_bytes());
        assert_eq!(fine(&larger), Err(ElfError::Truncated));
    }

    #[test]
    fn refuses_damaged_images_with_the_reason() {
        let cases: [(Vec<u8>, ElfError); 6] = [
            (
                build(0x20_0000, &[(0x20_0000, 0x100, 0x100, PF_X)])[..30].to_vec(),
                ElfError::Truncated,
            ),
            (
                build(0x20_0000, &[(0x10_0000, 0x100, 0x100, PF_X)]),
                ElfError::OutsideWindow,
            ),
            (
                build(0x20_0000, &[(0x20_0000, 0x10, 0x100, PF_X)]),
                ElfError::FileLargerThanMemory,
            ),
            (
                build(
                    0x20_0000,
                    &[(0x20_0000, 0x100, 0x100, PF_X), (0x20_0800, 0x100, 0, PF_W)],
                ),
                ElfError::Overlap,
            ),
            (
                build(0x30_0000, &[(0x20_0000, 0x100, 0x100, PF_X)]),
                ElfError::BadEntry,
            ),
            (
                build(0x20_0000, &[(0x20_0000, 0x100, 0x100_0000, PF_X)]),
                ElfError::FileLargerThanMemory,
            ),
        ];
        for (elf, expected) in cases {
            assert_eq!(parse(&elf, WINDOW.0, WINDOW.1).unwrap_err(), expected);
        }
        let mut not_arm = build(0x20_0000, &[(0x20_0000, 0x100, 0x100, PF_X)]);
        not_arm[18] = 62; // EM_X86_64
        assert_eq!(
            parse(&not_arm, WINDOW.0, WINDOW.1).unwrap_err(),
            ElfError::NotAarch64Executable
        );
        let many: Vec<(u64, u64, u64, u32)> = (0..9)
            .map(|i| (0x20_0000 + i * 0x1000, 0x10, 0, PF_X))
            .collect();
        assert_eq!(
            parse(&build(0x20_0000, &many), WINDOW.0, WINDOW.1).unwrap_err(),
            ElfError::TooManySegments
        );
    }
}
