//! The manifest loader and validator, `manifest::Manifest::from_str`, on any text: never a
//! panic, and every error names a line and column inside the text (its rendering with the
//! source snippet must not panic either). A manifest that loads is compiled into a payload with
//! stand-in images, and the kernel's reader (`bootdesc`) must read every record the compiler
//! wrote: what the host accepts, the kernel can boot.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;

use bootdesc::{PayloadHeader, Record, RecordReader};
use manifest::Manifest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::from_str(text, "fuzz.toml") {
        Err(error) => {
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&error.line),
                "{error} (the text has {lines} lines)"
            );
            assert!(error.column >= 1, "{error}");
            let _ = error.render(text);
            let _ = error.to_string();
        }
        Ok(manifest) => compiled(&manifest),
    }
});

/// The payload of a manifest that loaded, built with stand-in images, read back as the kernel
/// reads it.
fn compiled(manifest: &Manifest) {
    let _ = manifest.name();
    let _ = manifest.is_test_system();
    let mut images = BTreeMap::new();
    for (server, _) in manifest.binaries() {
        images.insert(server, elf_at(0x40_0000));
    }
    for (vm, _) in manifest.guests() {
        images.insert(vm, elf_at(0x4000_0000));
    }
    let files: BTreeMap<PathBuf, Vec<u8>> = manifest
        .guest_files()
        .into_iter()
        .map(|file| (file.path, arm64_image()))
        .collect();
    let Ok(payload) = manifest.payload_with_files(&images, &files) else {
        // Stand-in images may be refused (a guest outside its RAM, ...): that is an error, not
        // a panic, which is all this target asks of them.
        return;
    };
    let header = PayloadHeader::parse(&payload).expect("the compiler's payload header parses");
    let mut reader = RecordReader::new(header.description(&payload));
    let mut records = 0usize;
    while let Some(record) = reader
        .next_record()
        .expect("every record the compiler wrote decodes")
    {
        if records == 0 {
            assert!(matches!(record, Record::Header(_)), "{record:?} first");
        }
        records += 1;
    }
    assert!(records > 0, "a payload has at least its header record");
}

/// A minimal AArch64 ELF executable with one read-execute segment of 16 bytes at `entry`
/// (as manifests/tests/common builds one).
fn elf_at(entry: u64) -> Vec<u8> {
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

/// A 4 KiB arm64 Linux Image: the 64-byte header of the kernel's booting.rst (little-endian,
/// 4 KiB pages, `ARM\x64` magic), then zeros.
fn arm64_image() -> Vec<u8> {
    let mut image = vec![0u8; 4096];
    image[16..24].copy_from_slice(&4096u64.to_le_bytes()); // image_size
    image[24..32].copy_from_slice(&0b1010u64.to_le_bytes()); // flags: LE, 4 KiB, anywhere
    image[56..60].copy_from_slice(b"ARM\x64");
    image
}
