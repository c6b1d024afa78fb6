//! What the integration tests share: a minimal AArch64 ELF executable.

/// A minimal AArch64 ELF executable with one read-execute segment of 16 bytes at `entry`.
pub fn elf_at(entry: u64) -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf[24..32].copy_from_slice(&entry.to_le_bytes());
    elf[32..40].copy_from_slice(&64u64.to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[56..58].copy_from_slice(&1u16.to_le_bytes());
    let mut header = [0u8; 56];
    header[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    header[4..8].copy_from_slice(&5u32.to_le_bytes()); // R+X
    header[8..16].copy_from_slice(&120u64.to_le_bytes());
    header[16..24].copy_from_slice(&entry.to_le_bytes());
    header[32..40].copy_from_slice(&16u64.to_le_bytes());
    header[40..48].copy_from_slice(&16u64.to_le_bytes());
    elf.extend_from_slice(&header);
    elf.extend_from_slice(&[0xd5; 16]);
    elf
}
