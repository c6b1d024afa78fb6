//! Tests of the QEMU runner, some against a hand-made image (skipped without QEMU).

use super::*;
use std::path::{Path, PathBuf};

/// A minimal image: prints two lines on the PL011, then ends QEMU through semihosting
/// `SYS_EXIT_EXTENDED` with `status`, or spins forever when `status` is 0.
fn tiny_elf(status: u64) -> Vec<u8> {
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

fn tiny_image(label: &str, status: u64) -> Option<Image> {
    if std::process::Command::new(QEMU)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("{QEMU} not installed: skipped");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("xtask-qemu-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let elf = dir.join("tiny.elf");
    std::fs::write(&elf, tiny_elf(status)).unwrap();
    Some(Image {
        name: "tiny".into(),
        dir,
        elf,
        servers: Vec::new(),
    })
}

/// Whether any process still has `path` on its command line.
fn process_mentions(path: &Path) -> bool {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
    })
}

#[test]
fn exit_status_and_console_come_from_the_image() {
    let Some(image) = tiny_image("exit", 3) else {
        return;
    };
    let options = Options {
        icount: true,
        timeout: Some(Duration::from_secs(60)),
        ..Options::default()
    };
    let outcome = run(&image, &options).unwrap();
    assert_eq!(outcome.status, Status::Exited(3), "{}", outcome.console);
    assert!(
        outcome
            .console
            .contains("tiny: hello\nping: 10000 round trips ok\n")
    );
    std::fs::remove_dir_all(&image.dir).unwrap();
}

#[test]
fn timeout_kills_qemu() {
    let Some(image) = tiny_image("hang", 0) else {
        return;
    };
    let options = Options {
        timeout: Some(Duration::from_secs(1)),
        ..Options::default()
    };
    let outcome = run(&image, &options).unwrap();
    assert_eq!(outcome.status, Status::TimedOut(Duration::from_secs(1)));
    assert!(
        outcome.console.contains("tiny: hello"),
        "{}",
        outcome.console
    );
    assert!(!process_mentions(&image.elf), "QEMU survived the timeout");
    std::fs::remove_dir_all(&image.dir).unwrap();
}

#[test]
fn command_line_has_the_fixed_platform_and_the_options() {
    let image = Image {
        name: "x".into(),
        dir: PathBuf::from("/images/x"),
        elf: PathBuf::from("/images/x.elf"),
        servers: Vec::new(),
    };
    let options = Options {
        icount: true,
        debug_int: true,
        gdb: true,
        ..Options::default()
    };
    let qemu = command(&image, &options);
    let args: Vec<_> = qemu.get_args().map(|arg| arg.to_string_lossy()).collect();
    assert_eq!(
        args.join(" "),
        "-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -m 1G -smp 1 -nographic \
         -no-reboot -semihosting-config enable=on,target=native -kernel /images/x.elf \
         -icount shift=0,sleep=off -seed 1 -d int,guest_errors -D /images/x/qemu.log -s -S"
    );
    assert_eq!(qemu.get_current_dir(), Some(Path::new("/images/x")));
}
