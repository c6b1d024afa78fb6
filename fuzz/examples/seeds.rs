//! Writes the seed corpus of the targets whose inputs are real encodings: every message of the
//! four protocols as `ipc::encode` packs it, fast-path MMIO messages as the kernel builds them,
//! boot payloads and boot-info blobs compiled from the example manifests, those manifests
//! themselves, virtqueues laid out as a driver lays them out, and a kernel session in which
//! every thread does what its role does (the operations encoded as the `arbitrary` crate
//! decodes them). Run from the repository
//! root after changing a format (the other targets' seeds are inputs libFuzzer found):
//!
//! ```sh
//! rustup run nightly cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use abi::mmio::MmioMessage;
use bootdesc::{PayloadHeader, Record, RecordReader};
use manifest::Manifest;
use serde::Serialize;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    protocols(&root);
    mmio_messages(&root);
    manifests_and_payloads(&root);
    virtqueues(&root);
    kernel(&root);
}

/// Writes `bytes` as seed `name` of `target`.
fn seed(root: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("the corpus directory can be made");
    std::fs::write(dir.join(name), bytes).expect("the seed can be written");
}

/// A message body in the protocol targets' layout: byte 0 (0 for a request, 1 for a reply;
/// the label is the body's length), then the body as `ipc::encode` packs it.
fn body(reply: bool, value: &impl Serialize) -> Vec<u8> {
    let encoded = ipc::encode(value).expect("a protocol message encodes");
    let bytes: Vec<u8> = encoded.words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut seed = vec![u8::from(reply)];
    seed.extend_from_slice(&bytes[..encoded.label as usize]);
    seed
}

fn protocols(root: &Path) {
    use mmu_api::{FaultCounters, MappedSize, MmuError, Reply, Request, SlotFlags, SlotSpec};
    let mmu = "mmu_api";
    seed(
        root,
        mmu,
        "fault",
        &body(
            false,
            &Request::HandleStage2Fault {
                ipa: 0x4020_1000,
                write: true,
                exec: false,
                permission: false,
            },
        ),
    );
    seed(
        root,
        mmu,
        "set-slot",
        &body(
            false,
            &Request::SetSlot {
                slot: 0,
                spec: SlotSpec {
                    ipa: 0x4000_0000,
                    len: 256 << 20,
                    region: 2,
                    offset: 0,
                    flags: SlotFlags {
                        read_only: false,
                        allow_blocks: true,
                    },
                },
            },
        ),
    );
    seed(
        root,
        mmu,
        "dirty-log",
        &body(
            false,
            &Request::GetAndClearDirtyLog {
                ipa: 0x4800_0000,
                len: 1 << 20,
            },
        ),
    );
    seed(
        root,
        mmu,
        "mapped",
        &body(
            true,
            &Ok::<_, MmuError>(Reply::Mapped {
                size: MappedSize::Size2M,
            }),
        ),
    );
    seed(
        root,
        mmu,
        "counters",
        &body(
            true,
            &Ok::<_, MmuError>(Reply::Counters(FaultCounters {
                pages_4k: 255,
                blocks_2m: 10,
                permission: 2,
            })),
        ),
    );
    seed(
        root,
        mmu,
        "retries",
        &body(
            true,
            &Err::<Reply, _>(MmuError::BackingRetriesExhausted { attempts: 8 }),
        ),
    );

    let memory = "memory_api";
    seed(
        root,
        memory,
        "frame-for",
        &body(
            false,
            &memory_api::Request::FrameFor {
                region: 2,
                offset: 0x20_0000,
                size: memory_api::FrameSize::Size2M,
            },
        ),
    );
    seed(
        root,
        memory,
        "retry",
        &body(true, &memory_api::Response::Retry),
    );

    let device = "device_api";
    for (name, request) in [
        (
            "read",
            device_api::Request::Read {
                offset: 0x18,
                width: 4,
            },
        ),
        (
            "write",
            device_api::Request::Write {
                offset: 0,
                width: 1,
                value: u64::from(b'x'),
            },
        ),
        ("line", device_api::Request::Line),
        ("reset", device_api::Request::Reset),
    ] {
        seed(root, device, name, &body(false, &request));
    }
    seed(
        root,
        device,
        "value-line",
        &body(
            true,
            &device_api::Response::ValueLine {
                value: 0x90,
                line: true,
            },
        ),
    );

    let block = "block_api";
    seed(
        root,
        block,
        "read",
        &body(
            false,
            &block_api::Request::Read {
                sector: 2048,
                count: 8,
                offset: 4096,
            },
        ),
    );
    seed(
        root,
        block,
        "capacity",
        &body(false, &block_api::Request::Capacity),
    );
    seed(
        root,
        block,
        "capacity-reply",
        &body(
            true,
            &Ok::<_, block_api::BlockError>(block_api::Reply::Capacity {
                sectors: 2048,
                read_only: false,
                window_bytes: 1 << 20,
            }),
        ),
    );
    seed(
        root,
        block,
        "out-of-range",
        &body(
            true,
            &Err::<block_api::Reply, _>(block_api::BlockError::OutOfRange { capacity: 2048 }),
        ),
    );
}

fn mmio_messages(root: &Path) {
    for (name, message) in [
        (
            "read",
            MmioMessage {
                offset: 0x18,
                width: 4,
                value: 0,
                write: false,
            },
        ),
        (
            "write",
            MmioMessage {
                offset: 0x50,
                width: 4,
                value: 0,
                write: true,
            },
        ),
    ] {
        let bytes: Vec<u8> = message
            .to_words()
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        seed(root, "mmio_message", name, &bytes);
    }
}

/// The example manifests as seeds of `manifest`, and their compiled payloads (with stand-in
/// images) and the boot-info blobs in them as seeds of `bootdesc`.
fn manifests_and_payloads(root: &Path) {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for name in ["hello", "test-guest", "linux"] {
        let path = repository.join("manifests").join(format!("{name}.toml"));
        let text = std::fs::read(&path).expect("the example manifest is there");
        seed(root, "manifest", &format!("{name}.toml"), &text);
        let manifest = Manifest::load(&path).expect("the example manifest loads");
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
            continue;
        };
        // The description only: the stand-in images are padding as far as the readers go.
        let header = PayloadHeader::parse(&payload).expect("the compiler's payload parses");
        let description_end = bootdesc::PAYLOAD_HEADER_LEN + header.description(&payload).len();
        let mut short = payload[..description_end].to_vec();
        short[12..16].copy_from_slice(&(description_end as u32).to_le_bytes());
        seed(root, "bootdesc", &format!("{name}-payload"), &short);
        let mut reader = RecordReader::new(header.description(&payload));
        let mut blobs = 0;
        while let Ok(Some(record)) = reader.next_record() {
            if let Record::Server(server) = record
                && blobs < 2
            {
                seed(
                    root,
                    "bootdesc",
                    &format!("{name}-bootinfo-{}", server.name),
                    server.bootinfo,
                );
                blobs += 1;
            }
        }
    }
}

/// A minimal AArch64 ELF executable with one read-execute segment of 16 bytes at `entry`.
fn elf_at(entry: u64) -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf[16..18].copy_from_slice(&2u16.to_le_bytes());
    elf[18..20].copy_from_slice(&183u16.to_le_bytes());
    elf[24..32].copy_from_slice(&entry.to_le_bytes());
    elf[32..40].copy_from_slice(&64u64.to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[56..58].copy_from_slice(&1u16.to_le_bytes());
    let mut header = [0u8; 56];
    header[..4].copy_from_slice(&1u32.to_le_bytes());
    header[4..8].copy_from_slice(&5u32.to_le_bytes());
    header[8..16].copy_from_slice(&120u64.to_le_bytes());
    header[16..24].copy_from_slice(&entry.to_le_bytes());
    header[32..40].copy_from_slice(&16u64.to_le_bytes());
    header[40..48].copy_from_slice(&16u64.to_le_bytes());
    elf.extend_from_slice(&header);
    elf.extend_from_slice(&[0xd5; 16]);
    elf
}

/// A 4 KiB arm64 Linux Image header (booting.rst), then zeros.
fn arm64_image() -> Vec<u8> {
    let mut image = vec![0u8; 4096];
    image[16..24].copy_from_slice(&4096u64.to_le_bytes());
    image[24..32].copy_from_slice(&0b1010u64.to_le_bytes());
    image[56..60].copy_from_slice(b"ARM\x64");
    image
}

/// Virtqueues in `virtio_queue`'s layout (see its documentation): size 8 at the default ring
/// addresses, two chains made available as Linux's virtio_ring.c makes a block request
/// available (header readable, data and status writable), then operations.
fn virtqueues(root: &Path) {
    const RAM_BASE: u64 = 0x4000_0000;
    let mut ram = vec![0u8; 0x1800];
    let mut descriptor = |index: usize, address: u64, length: u32, flags: u16, next: u16| {
        let at = 16 * index;
        ram[at..at + 8].copy_from_slice(&address.to_le_bytes());
        ram[at + 8..at + 12].copy_from_slice(&length.to_le_bytes());
        ram[at + 12..at + 14].copy_from_slice(&flags.to_le_bytes());
        ram[at + 14..at + 16].copy_from_slice(&next.to_le_bytes());
    };
    const NEXT: u16 = 1;
    const WRITE: u16 = 2;
    descriptor(0, RAM_BASE + 0x1000, 16, NEXT, 1);
    descriptor(1, RAM_BASE + 0x1100, 512, NEXT | WRITE, 2);
    descriptor(2, RAM_BASE + 0x1300, 1, WRITE, 0);
    descriptor(3, RAM_BASE + 0x1400, 16, NEXT, 4);
    descriptor(4, RAM_BASE + 0x1500, 1, WRITE, 0);
    // The driver area at 0x800: flags 0, idx 2, ring [0, 3].
    ram[0x802..0x804].copy_from_slice(&2u16.to_le_bytes());
    ram[0x806..0x808].copy_from_slice(&3u16.to_le_bytes());
    // A block request header: VIRTIO_BLK_T_IN of sector 0.
    let mut input = vec![3u8];
    input.extend_from_slice(&(ram.len() as u16).to_le_bytes());
    input.extend_from_slice(&ram);
    let mut popped = input.clone();
    popped.extend_from_slice(&[0, 0, 2, 0, 0]); // take one, 512 bytes written
    popped.push(1); // the next through process_one
    popped.push(3); // recover
    seed(root, "virtio_queue", "two-chains", &popped);
    // A loop: descriptor 4 points back at 3, made available again by a guest write of idx 3.
    let mut looped = input;
    looped.extend_from_slice(&[0, 0, 0, 0, 0, 1]);
    looped.extend_from_slice(&[2, 0x4c, 0, 4, 3, 0, 3, 0]); // descriptor 4: NEXT | WRITE, next 3
    looped.extend_from_slice(&[2, 0x02, 0x08, 2, 3, 0]); // avail idx 3
    looped.extend_from_slice(&[2, 0x08, 0x08, 2, 3, 0]); // ring[2] = 3
    looped.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
    seed(root, "virtio_queue", "loop", &looped);
}

/// Bytes the `arbitrary` crate (1.x) decodes back into the values written: integers
/// little-endian, a bool as one byte, an enum variant as a `u32` scaled to the variant count,
/// and before each element of a `Vec` taken from the rest of the input, a "keep going" bool.
#[derive(Default)]
struct Arbitrary(Vec<u8>);

impl Arbitrary {
    fn element(&mut self) -> &mut Self {
        self.0.push(1);
        self
    }
    /// Variant `index` of an enum of `count` variants (derive(Arbitrary) takes
    /// `(u64::from(u32) * count) >> 32`).
    fn variant(&mut self, index: u32, count: u32) -> &mut Self {
        let raw = (u64::from(index) << 32).div_ceil(u64::from(count)) as u32;
        self.0.extend_from_slice(&raw.to_le_bytes());
        self
    }
    fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }
    fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
}

/// `kernel_syscalls`' `Op` and `Reg` as the seed writes them.
mod kernel_ops {
    pub const OPS: u32 = 10;
    pub const SYSCALL: u32 = 0;
    pub const INVOKE: u32 = 1;
    pub const VM_EXIT: u32 = 3;
    pub const MMIO_ACCESS: u32 = 4;
    pub const IRQ: u32 = 5;
    pub const TICK: u32 = 6;
    pub const REGS: u32 = 4;
    pub const SMALL: u32 = 0;
    pub const PAGE: u32 = 1;
    pub const SIZE: u32 = 2;
    pub const RAW: u32 = 3;
}

impl Arbitrary {
    fn reg(&mut self, value: u64) -> &mut Self {
        use kernel_ops::{RAW, REGS, SMALL};
        match u8::try_from(value) {
            Ok(small) => self.variant(SMALL, REGS).u8(small),
            Err(_) => self.variant(RAW, REGS).u64(value),
        }
    }
    fn syscall(&mut self, number: u8, regs: [u64; 7]) -> &mut Self {
        self.element()
            .variant(kernel_ops::SYSCALL, kernel_ops::OPS)
            .u8(number);
        for reg in regs {
            self.reg(reg);
        }
        self.u8(0)
    }
    fn invoke(&mut self, slot: u8, label: u8, args: [Reg; 4]) -> &mut Self {
        self.element().variant(kernel_ops::INVOKE, kernel_ops::OPS);
        self.u8(slot).u8(label).u8(4).u8(0);
        for arg in args {
            match arg {
                Reg::Value(value) => self.reg(value),
                Reg::Page(page) => {
                    let page = page.to_le_bytes();
                    self.variant(kernel_ops::PAGE, kernel_ops::REGS)
                        .u8(page[0])
                        .u8(page[1])
                }
                Reg::Block(block) => self
                    .variant(kernel_ops::SIZE, kernel_ops::REGS)
                    .u8(u8::from(block)),
            };
        }
        self.u8(1)
    }
}

#[derive(Clone, Copy)]
enum Reg {
    Value(u64),
    Page(u16),
    Block(bool),
}

/// A session of `kernel_syscalls`: the supervisor suspends the client and waits; the server
/// carves a page from its RAM range, maps it in the VM, deletes it again (unmapping it), sets
/// an MMIO route to itself and has the marker of a page of it installed, then waits; the VCPU
/// thread runs, its load from that page takes the MMIO fast path to the server, which answers;
/// the guest exits (a stage-2 abort, a hypercall), an interrupt fires, time passes.
fn kernel(root: &Path) {
    use Reg::{Block, Page, Value};
    const RECV: u8 = 4;
    const REPLY_RECV: u8 = 1;
    let label = |label: u64, length: u64| abi::MessageInfo::new(label, 0, length).raw();
    let mut ops = Arbitrary::default();
    ops.invoke(5, 1, [Value(0); 4]) // supervisor: TcbSuspend the client
        .syscall(RECV, [3, 0, 0, 0, 0, 0, 1]) // supervisor waits for faults
        .invoke(6, 13, [Value(0), Block(false), Value(14), Value(0)]) // server: FrameCarve
        .invoke(7, 10, [Value(14), Page(0), Value(1), Value(0)]) // VSpaceMap, writable
        .invoke(2, 7, [Value(14), Value(0), Value(0), Value(0)]) // CNodeDelete: unmaps
        .invoke(
            8,
            20,
            [Value(0), Value(11), Value(0x0900_0000), Value(0x2000)],
        ) // route
        .invoke(7, 23, [Value(0x0900_0018), Value(0), Value(0), Value(0)]) // VSpaceMapMmio
        .syscall(RECV, [3, 0, 0, 0, 0, 0, 1]); // the server waits: the guest runs
    // The guest's 32-bit load from the marked page: EC 0x24, IL, ISV, SAS = word, level-3
    // translation fault.
    let esr = (0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | 0x07;
    ops.element()
        .variant(kernel_ops::MMIO_ACCESS, kernel_ops::OPS)
        .u64(esr)
        .u64(0x0900_0018)
        .reg(0x0900_0018)
        .u8(2)
        .variant(0, 2)
        .u8(0);
    // The server answers the access (REPLY_DONE, the value) and waits again.
    ops.syscall(REPLY_RECV, [3, label(0, 1), 0x1234, 0, 0, 0, 1]);
    let exit = |kind: u64, pc: u64, esr: u64, first: u64| [kind, pc, esr, first, 0, 0, 0, 0, 0];
    for words in [
        exit(1, 0x4008_0000, esr, 0x4020_0000),
        exit(2, 0x4008_0004, 0x5A00_0000, 0x8400_0000),
    ] {
        ops.element().variant(kernel_ops::VM_EXIT, kernel_ops::OPS);
        for word in words {
            ops.u64(word);
        }
        // The vmm resumes the guest, stepping over the instruction.
        ops.syscall(REPLY_RECV, [3, label(1, 6), 0, 0, 0, 0, 1]);
    }
    ops.element()
        .variant(kernel_ops::IRQ, kernel_ops::OPS)
        .u32(0);
    ops.element()
        .variant(kernel_ops::TICK, kernel_ops::OPS)
        .u8(5);
    seed(root, "kernel_syscalls", "session", &ops.0);
}
