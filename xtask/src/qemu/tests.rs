//! Tests of the QEMU runner, some against a hand-made image (skipped without QEMU).

use super::*;
use std::path::{Path, PathBuf};

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
    std::fs::write(&elf, super::probe::tiny_elf(status)).unwrap();
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
        "-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -m 1G -smp 1 -nodefaults \
         -display none -serial mon:stdio -no-reboot -semihosting-config enable=on,target=native -kernel /images/x.elf \
         -icount shift=0,sleep=off -seed 1 -d int,guest_errors -D /images/x/qemu.log -s -S"
    );
    assert_eq!(qemu.get_current_dir(), Some(Path::new("/images/x")));
}

#[test]
fn input_is_typed_in_order_each_after_its_text_and_once() {
    let input = [
        Input {
            after: "login:".into(),
            text: "root\n".into(),
        },
        Input {
            after: "# ".into(),
            text: "echo hi\n".into(),
        },
    ];
    let (mut next, mut from, mut typed) = (0, 0, Vec::new());
    type_input(&input, b"booting...", &mut next, &mut from, &mut typed).unwrap();
    assert!(typed.is_empty(), "nothing asked yet");
    // The second entry's text is already there but comes after the first's: only then.
    let console = b"# early\nlogin:".to_vec();
    type_input(&input, &console, &mut next, &mut from, &mut typed).unwrap();
    assert_eq!(typed, b"root\n");
    type_input(&input, &console, &mut next, &mut from, &mut typed).unwrap();
    assert_eq!(typed, b"root\n", "typed once");
    let console = [console, b" root\n# ".to_vec()].concat();
    type_input(&input, &console, &mut next, &mut from, &mut typed).unwrap();
    assert_eq!(typed, b"root\necho hi\n");
    assert_eq!(next, 2);
}
