//! The smallest image QEMU can boot: proof that the installed QEMU runs our machine model.
//!
//! `qemu-system-aarch64 --version` succeeding says nothing about ROMs, machine options or
//! semihosting; booting this image with the very command line of every test does. It prints
//! two lines on the PL011 and ends QEMU through semihosting with a chosen status.

use std::time::Duration;

use anyhow::{Context, bail};

use super::{Options, Status};
use crate::build::Image;

/// The status the probe image exits with (not 0, so a QEMU that exits 0 for another reason
/// cannot pass for it).
const PROBE_STATUS: u64 = 3;

/// The line the probe prints first.
const PROBE_LINE: &str = "tiny: hello";

/// Boots the probe image in `dir` (created if missing); succeeds when QEMU printed the probe's
/// line and exited with its status.
pub fn boot_probe(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let elf = dir.join("probe.elf");
    std::fs::write(&elf, tiny_elf(PROBE_STATUS))
        .with_context(|| format!("writing {}", elf.display()))?;
    let image = Image {
        name: "probe".into(),
        dir: dir.to_path_buf(),
        elf,
        servers: Vec::new(),
    };
    let options = Options {
        icount: true,
        timeout: Some(Duration::from_secs(60)),
        ..Options::default()
    };
    let outcome = super::run(&image, &options)?;
    if outcome.status != Status::Exited(PROBE_STATUS as i32)
        || !outcome.console.contains(PROBE_LINE)
    {
        bail!(
            "QEMU does not boot a trivial image ({}, expected exit status {PROBE_STATUS} and \
             {PROBE_LINE:?}); its output:\n{}",
            super::describe(outcome.status),
            outcome.console
        );
    }
    Ok(())
}

/// A minimal image: prints two lines on the PL011, then ends QEMU through semihosting
/// `SYS_EXIT_EXTENDED` with `status`, or spins forever when `status` is 0.
pub fn tiny_elf(status: u64) -> Vec<u8> {
    const BASE: u64 = 0x4008_0000;
    #[rustfmt::skip]
    let code: [u32; 12] = [
        0xd2a1_2002, // movz x2, #0x0900, lsl #16   (PL011 data register)
        0x1000_01e3, // adr  x3, msg
        0x3840_1464, // 1: ldrb w4, [x3], #1
        0x3400_0064, //    cbz  w4, 2f
        0x3900_0044, //    strb w4, [x2]
        0x17ff_fffd, //    b    1b
        0x1000_00c1, // 2: adr  x1, block
        0xf940_0425, //    ldr  x5, [x1, #8]
        0xb400_0065, //    cbz  x5, 4f
        0xd280_0400, //    mov  x0, #0x20           (SYS_EXIT_EXTENDED)
        0xd45e_0000, //    hlt  #0xf000             (semihosting call)
        0x1400_0000, // 4: b    4b
    ];
    let mut body: Vec<u8> = code.iter().flat_map(|word| word.to_le_bytes()).collect();
    body.extend_from_slice(&0x2_0026u64.to_le_bytes()); // block: ADP_Stopped_ApplicationExit
    body.extend_from_slice(&status.to_le_bytes());
    body.extend_from_slice(b"tiny: hello\r\nping: 10000 round trips ok\r\n\0");

    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers right after this header
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    let offset = 64 + 56;
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R + X
    for word in [offset, BASE, BASE, body.len() as u64, body.len() as u64, 8] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(&body);
    elf
}
