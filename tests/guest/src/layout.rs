//! The guest's view of its machine: the VM memory map of docs/GUEST-ABI.md and where in RAM
//! each test works.
//!
//! Every address the guest uses is named here (the hypervisor's map is the contract, so it is
//! written down once); the stage-1 map in `mmu.rs` is an identity map of exactly these ranges.
//!
//! ```text
//! IPA (= VA, identity map)          stage 1 attributes     what
//! 0x0800_0000 .. 0x0801_0000        Device-nGnRE, XN       GICv3 distributor (emulated by the vmm)
//! 0x080A_0000 .. 0x080C_0000        Device-nGnRE, XN       GICv3 redistributor: RD, SGI frames
//! 0x0900_0000 .. 0x0900_1000        Device-nGnRE, XN       PL011 (emulated by a device server)
//! 0x0A00_0000 .. 0x0A20_0000        Device-nGnRE, XN       virtio-mmio transports (one block)
//! 0x2000_0000 .. 0x2000_1000        Device-nGnRE, EL1 X    the hole: no slot, no device
//! 0x4000_0000 .. 0x4020_0000        4 KiB pages            RAM block 0:
//!   0x4000_0000 .. 0x4008_0000        Normal WB, RW, XN      unused (QEMU may put a DTB here)
//!   0x4008_0000 .. image end          W^X per section        the guest image (guest.ld)
//!   0x4010_0000 .. 0x4020_0000        Normal WB, RW, XN      PAGE_WINDOW: 256-page patterns
//! 0x4020_0000 .. 0x4400_0000        2 MiB blocks           RAM blocks 1..31, Normal WB, RW, XN
//!   0x4020_0000 .. 0x4030_0000                               DIRTY_WINDOW: dirty logging
//!   one word in each of BLOCK_PROBES                         2 MiB block patterns
//! ```

/// The PL011 UART (docs/GUEST-ABI.md: emulated by the pl011 device server).
pub const PL011_BASE: u64 = 0x0900_0000;

/// The first virtio-mmio transport (docs/VIRTIO.md): where the manifest's first `devices`
/// entry is (manifests/test-guest.toml gives a virtio-console there, whose QueueNotify is a
/// doorbell on the kernel's MMIO fast path: the bench kicks it).
pub const VIRTIO_BASE: u64 = 0x0A00_0000;

/// A transport's QueueNotify register (virtio 1.2 section 4.2.2).
pub const VIRTIO_QUEUE_NOTIFY: u64 = 0x050;

/// The PL011's interrupt, UARTINTR: SPI 1, level-sensitive (docs/GUEST-ABI.md, "Interrupts").
pub const PL011_INTID: u32 = 33;

/// The GICv3 distributor (docs/GUEST-ABI.md: emulated by the vmm), where QEMU's `virt` has it.
pub const GICD_BASE: u64 = 0x0800_0000;

/// Size of the distributor's register block.
pub const GICD_SIZE: u64 = 64 * KIB;

/// The one redistributor (the VM has one VCPU): its RD frame, then its SGI frame.
pub const GICR_BASE: u64 = 0x080A_0000;

/// Size of the redistributor's two 64 KiB frames (IHI 0069, 12.10).
pub const GICR_SIZE: u64 = 128 * KIB;

/// One kibibyte.
pub const KIB: u64 = 1 << 10;

/// An IPA in no memory slot and no device: an access gets a synchronous external abort, a data
/// abort for a load and an instruction abort for a fetch (a branch to it).
pub const HOLE: u64 = 0x2000_0000;

/// Guest RAM base (a 2 MiB aligned memory slot).
pub const RAM_BASE: u64 = 0x4000_0000;

/// Guest RAM size given to the test guest by its manifest.
pub const RAM_SIZE: u64 = 64 * MIB;

/// Where the image is linked (guest.ld); the ABI's load address for the test guest.
pub const IMAGE_BASE: u64 = 0x4008_0000;

/// A stage-1 page.
pub const PAGE_SIZE: u64 = 4096;

/// A stage-1 level-2 block.
pub const BLOCK_SIZE: u64 = 2 * MIB;

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// The RAM block mapped with 4 KiB pages at stage 1 (the one holding the image).
pub const PAGED_BLOCK: u64 = RAM_BASE;

/// 1 MiB of never-touched RAM, mapped with 4 KiB pages at stage 1: the page pattern test.
pub const PAGE_WINDOW: u64 = 0x4010_0000;

/// Size of [`PAGE_WINDOW`] (256 pages).
pub const PAGE_WINDOW_SIZE: u64 = MIB;

/// 1 MiB of RAM, inside a 2 MiB block at stage 1: the dirty-logging test (the ABI's maximum
/// range, 256 pages, so one bitmap of four words covers it).
pub const DIRTY_WINDOW: u64 = 0x4020_0000;

/// Size of [`DIRTY_WINDOW`].
pub const DIRTY_WINDOW_SIZE: u64 = MIB;

/// The 2 MiB blocks (index from [`RAM_BASE`]) that get one word each in the block test: eight
/// distinct blocks spread over the slot, none holding the image or a test window.
pub const BLOCK_PROBES: [u64; 8] = [3, 7, 11, 15, 19, 23, 27, 31];

// The test windows are where the map above says, and the map is consistent with the ABI.
const _: () = assert!(PAGE_WINDOW >= IMAGE_BASE && PAGE_WINDOW % BLOCK_SIZE == MIB);
const _: () = assert!(PAGE_WINDOW + PAGE_WINDOW_SIZE == PAGED_BLOCK + BLOCK_SIZE);
const _: () = assert!(DIRTY_WINDOW == PAGED_BLOCK + BLOCK_SIZE);
const _: () = assert!(DIRTY_WINDOW_SIZE / PAGE_SIZE == 256);
const _: () = assert!(BLOCK_PROBES[0] * BLOCK_SIZE >= DIRTY_WINDOW + DIRTY_WINDOW_SIZE - RAM_BASE);
const _: () = assert!((BLOCK_PROBES[7] + 1) * BLOCK_SIZE <= RAM_SIZE);
const _: () = assert!(RAM_BASE.is_multiple_of(BLOCK_SIZE) && RAM_SIZE.is_multiple_of(BLOCK_SIZE));

/// Blocks no check touches, left for the benchmark's first-touch stage-2 faults.
pub const BENCH_BLOCKS: [u64; 3] = [4, 5, 6];

const _: () = {
    let mut i = 0;
    while i < BENCH_BLOCKS.len() {
        let mut j = 0;
        while j < BLOCK_PROBES.len() {
            assert!(BENCH_BLOCKS[i] != BLOCK_PROBES[j]);
            j += 1;
        }
        assert!(
            BENCH_BLOCKS[i] > 1,
            "blocks 0 and 1 hold the image and the dirty window"
        );
        i += 1;
    }
};
