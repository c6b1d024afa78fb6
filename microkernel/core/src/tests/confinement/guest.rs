//! A guest cannot reach the kernel or a server through any IPA.
//!
//! How the boot code builds a guest's stage 2 (microkernel/kernel/src/boot.rs, `Record::Vm`):
//! `GuestVSpace::new` takes an empty root and a pool of table pages from the boot allocator,
//! and maps nothing; the VM's RAM is copied into its RAM region (`guest::preload`), not mapped.
//! From then on a translation enters the table only through `VSpaceMap` of a carved frame
//! (`memory::decode`), carved by `FrameCarve` from a frame range, and a frame range exists only
//! as the capability of a RAM region record (`boot::cap_object`, `CapObject::Frame`): the
//! VM's `ram:<vm>` (held by its memory-backing server) and each `frames:<region>` the manifest
//! names. No capability covers the kernel's image, its objects and page tables, or any
//! server's image, stack, IPC buffer or boot info, so none of them can be carved or mapped.
//! MMIO markers are invalid descriptors (`stage2::marker`): no translation at all.
//!
//! The tests build that world on in-memory tables, with a physical layout like the boot
//! allocator's (the kernel image at 0x4010_0000, then its objects and page tables, then server
//! frames, then RAM regions), run the mapping path the way the mmu-server and the
//! memory-backing server use it, and then hostile sequences, and walk every entry of the
//! guest's stage 2 after each step: every leaf lies inside the VM's RAM region, and every table
//! it links is one of its own live table pages (never guest RAM, never a page it gave back).
//!
//! What this does not cover: that the boot allocator really places regions apart from the
//! kernel and the servers (`boot_alloc.rs` runs only on the target; the QEMU boot checks its
//! own EL2 map, and the `confine` QEMU scenario reads kernel addresses from a server), and the
//! manifest compiler's choice of who holds which frame range (`manifests` tests).

use super::super::{
    CLIENT, EP, MockMemory, OTHER, Pools, SERVER, error_of, invoke, pools, put_cap, run_as,
    syscall, system,
};
use crate::cap::{Cap, FrameCap};
use crate::memory::VSpaceInfo;
use crate::stage2::{self, Attributes, Entry, Level, MemoryKind, PageSize, TableMemory};
use crate::system::{Effect, System};
use crate::tcb::ThreadState;
use abi::InvocationLabel::{
    CNodeCopy, CNodeDelete, FrameCarve, FrameRevoke, VSpaceMap, VSpaceUnmap, VSpaceWriteProtect,
};
use abi::message::{IPC_BUFFER_RECEIVE_SLOT, IPC_BUFFER_SEND_CAP};
use abi::vm::MapAttributes;
use abi::{CNODE_SLOT, MessageInfo, REPLY_SLOT, Rights, Syscall};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::vec::Vec;

const PAGE: u64 = 4096;
const BLOCK: u64 = 2 << 20;

/// The physical layout, as the boot allocator lays it out (ranges are `[start, end)`).
const FIRMWARE: (u64, u64) = (0x4000_0000, 0x4010_0000);
const KERNEL_IMAGE: (u64, u64) = (0x4010_0000, 0x4100_0000);
const KERNEL_OBJECTS: (u64, u64) = (0x4100_0000, 0x4200_0000);
/// Where the guest's table pages come from (inside the kernel's objects).
const TABLE_POOL: u64 = 0x4180_0000;
const SERVER_FRAMES: (u64, u64) = (0x4200_0000, 0x4300_0000);
/// A device server's DMA region (`frames:dma`, region 1).
const DMA: (u64, u64) = (0x4400_0000, 0x4401_0000);
/// The VM's RAM region (`ram:vm`, region 0): 8 MiB.
const VM_RAM: (u64, u64) = (0x4800_0000, 0x4880_0000);
/// The GIC distributor and the kernel's UART.
const DEVICES: [(u64, u64); 2] = [(0x0800_0000, 0x0801_0000), (0x0900_0000, 0x0900_1000)];
/// The guest-physical base of its RAM (the manifest's default `ram_base`).
const GUEST_RAM: u64 = 0x4000_0000;

/// Memory no guest translation may reach.
const FORBIDDEN: [(u64, u64); 7] = [
    FIRMWARE,
    KERNEL_IMAGE,
    KERNEL_OBJECTS,
    SERVER_FRAMES,
    DMA,
    DEVICES[0],
    DEVICES[1],
];

/// Who holds what: the mmu-server (SERVER) the guest's VSpace, the memory-backing server
/// (OTHER) the VM's RAM range, a device server (CLIENT) its DMA range.
const MMU: crate::TcbId = SERVER;
const BACKING: crate::TcbId = OTHER;
const DEVICE: crate::TcbId = CLIENT;
const RANGE: u64 = 8;
const VSPACE: u64 = 9;
/// The endpoint the mmu-server calls the memory-backing server on (endpoint 1).
const BACKING_EP: u64 = 10;

/// The guest's stage 2 in memory, with its table pool: pages handed out, given back and
/// handed out again, as `vspace.rs` does.
struct GuestTables {
    entries: HashMap<(u64, usize), u64>,
    root: u64,
    next: u64,
    free: Vec<u64>,
    live: BTreeSet<u64>,
}

impl TableMemory for GuestTables {
    fn read(&self, table: u64, index: usize) -> u64 {
        self.entries.get(&(table, index)).copied().unwrap_or(0)
    }
    fn write(&mut self, table: u64, index: usize, value: u64) {
        self.entries.insert((table, index), value);
    }
    fn allocate_table(&mut self) -> Option<u64> {
        let page = self.free.pop().unwrap_or_else(|| {
            self.next += PAGE;
            self.next
        });
        self.entries.retain(|(table, _), _| *table != page);
        self.live.insert(page);
        Some(page)
    }
}

impl GuestTables {
    /// `GuestVSpace::new`: an empty root, nothing mapped.
    fn new() -> Self {
        let mut tables = Self {
            entries: HashMap::new(),
            root: 0,
            next: TABLE_POOL,
            free: Vec::new(),
            live: BTreeSet::new(),
        };
        tables.root = tables.allocate_table().unwrap();
        tables
    }

    /// `vspace::run`'s freeing: a removed table and its subtree go back to the pool.
    fn release(&mut self, removed: Option<stage2::RemovedTable>) {
        let Some(removed) = removed else { return };
        let mut freed = Vec::new();
        stage2::tables_under(self, removed, &mut |table| freed.push(table));
        for table in freed {
            self.live.remove(&table);
            self.free.push(table);
        }
    }

    /// Does with a memory effect what `trap::apply` and `vspace.rs` do.
    fn apply(&mut self, system: &mut System<'_>, effect: Effect) {
        match effect {
            Effect::Map {
                pa,
                ipa,
                size,
                attributes,
                ..
            } => {
                let attributes = Attributes {
                    writable: attributes.0 & MapAttributes::WRITE.0 != 0,
                    executable: attributes.0 & MapAttributes::EXECUTE.0 != 0,
                    kind: MemoryKind::Normal,
                };
                let root = self.root;
                let outcome = stage2::map(self, root, ipa, pa, page_size(size), attributes)
                    .expect("a map that passed decode cannot fail");
                stage2::apply(&outcome.plan, self, |_| {});
                self.release(outcome.removed_table);
            }
            Effect::Unmap { ipa, size, .. } => {
                let root = self.root;
                let outcome = match stage2::unmap(self, root, ipa, page_size(size)) {
                    Err(stage2::MapError::WouldSplitBlock) => {
                        stage2::unmap(self, root, ipa & !(BLOCK - 1), PageSize::Size2M)
                    }
                    other => other,
                };
                if let Ok(outcome) = outcome {
                    stage2::apply(&outcome.plan, self, |_| {});
                    self.release(outcome.removed_table);
                }
            }
            Effect::UnmapFrame { ipa, size, pa, .. } => self.unmap_frame(ipa, size, pa),
            Effect::WriteProtect { ipa, len, .. } => {
                let root = self.root;
                let budget = stage2::WRITE_PROTECT_BUDGET;
                let outcome = stage2::write_protect_bounded(self, root, ipa, len, budget)
                    .expect("decode checked the range");
                stage2::apply(&outcome.plan, self, |_| {});
            }
            Effect::Revoke {
                region,
                first_page,
                pages,
            } => {
                let mut unmaps = Vec::new();
                system.revoke_frames(region, first_page, pages, |_, ipa, size, pa| {
                    unmaps.push((ipa, size, pa));
                });
                for (ipa, size, pa) in unmaps {
                    self.unmap_frame(ipa, size, pa);
                }
            }
            Effect::None => {}
            other => panic!("not a memory effect: {other:?}"),
        }
    }

    fn unmap_frame(&mut self, ipa: u64, size: u64, pa: u64) {
        let root = self.root;
        let outcome = stage2::unmap_frame(self, root, ipa, pa, page_size(size))
            .expect("a recorded mapping is aligned");
        stage2::apply(&outcome.plan, self, |_| {});
    }

    /// Every leaf of the whole IPA space, (IPA, size, PA), read entry by entry from the root;
    /// panics on a table link to anything but one of the VSpace's own live table pages.
    fn leaves(&self) -> Vec<(u64, u64, u64)> {
        let mut found = Vec::new();
        self.walk(self.root, Level::One, 0, &mut found);
        found
    }

    fn walk(&self, table: u64, level: Level, base: u64, found: &mut Vec<(u64, u64, u64)>) {
        for index in 0..stage2::ENTRIES {
            let ipa = base + index as u64 * level.entry_bytes();
            match stage2::decode(self.read(table, index), level) {
                Entry::Invalid => {}
                Entry::Leaf { pa, size, .. } => found.push((ipa, size.bytes(), pa)),
                Entry::Table(next) => {
                    assert!(
                        self.live.contains(&next),
                        "IPA {ipa:#x}: a table link to {next:#x}, not a live table page"
                    );
                    let below = level.next().expect("level 3 holds no tables");
                    self.walk(next, below, ipa, found);
                }
            }
        }
    }
}

fn page_size(bytes: u64) -> PageSize {
    if bytes == BLOCK {
        PageSize::Size2M
    } else {
        PageSize::Size4K
    }
}

fn inside(range: (u64, u64), start: u64, len: u64) -> bool {
    range.0 <= start && start + len <= range.1
}

fn overlaps(range: (u64, u64), start: u64, len: u64) -> bool {
    start < range.1 && range.0 < start + len
}

/// Every translation of the guest lies inside its RAM region, and none touches the kernel,
/// a server, a device, its own table pages or another region.
fn assert_confined(tables: &GuestTables, what: &str) {
    for (ipa, size, pa) in tables.leaves() {
        assert!(
            inside(VM_RAM, pa, size),
            "{what}: IPA {ipa:#x} maps {size:#x} bytes at {pa:#x}, outside the VM's RAM"
        );
        for range in FORBIDDEN {
            assert!(
                !overlaps(range, pa, size),
                "{what}: IPA {ipa:#x} reaches {range:x?}"
            );
        }
        for table in &tables.live {
            assert!(
                !overlaps((*table, table + PAGE), pa, size),
                "{what}: a table page"
            );
        }
    }
}

/// The world after boot: each holder's capabilities, the guest VSpace empty.
fn booted(pools: &mut Pools) -> System<'_> {
    let mut system = system(pools);
    let vm_ram = FrameCap::new(
        0,
        (VM_RAM.0 >> 12) as u32,
        ((VM_RAM.1 - VM_RAM.0) >> 12) as u32,
        false,
    );
    let dma = FrameCap::new(
        1,
        (DMA.0 >> 12) as u32,
        ((DMA.1 - DMA.0) >> 12) as u32,
        false,
    );
    put_cap(&mut system, BACKING, RANGE, Cap::Frame(vm_ram));
    put_cap(&mut system, DEVICE, RANGE, Cap::Frame(dma));
    put_cap(&mut system, MMU, VSPACE, Cap::VSpace { vspace: 0 });
    let backing_ep = |rights| Cap::Endpoint {
        ep: 1,
        badge: 0,
        rights,
        generation: 0,
    };
    put_cap(&mut system, BACKING, BACKING_EP, backing_ep(Rights::READ));
    put_cap(&mut system, MMU, BACKING_EP, backing_ep(Rights::WRITE));
    // The backing server is no client of the mmu-server.
    put_cap(&mut system, BACKING, EP, Cap::Null);
    // The device server is a client of the mmu-server's endpoint without GRANT, as a manifest
    // client is unless it says `grant = true`.
    put_cap(
        &mut system,
        DEVICE,
        EP,
        Cap::Endpoint {
            ep: 0,
            badge: 7,
            rights: Rights::WRITE,
            generation: 0,
        },
    );
    system
}

/// One FrameFor round trip as the two servers make it: the mmu-server calls the memory-backing
/// server naming `receive` as its receive slot; the backing server carves the frame at
/// `offset` of the VM's RAM into its slot 11 (its previous carve deleted first) and lends it
/// with its reply.
fn frame_for(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    offset: u64,
    size: u64,
    receive: u64,
) {
    memory.0.insert(
        (system.tcb(MMU).ipc_buffer, IPC_BUFFER_RECEIVE_SLOT),
        receive,
    );
    syscall(
        system,
        memory,
        MMU,
        Syscall::Call,
        &[BACKING_EP, MessageInfo::new(1, 0, 2).raw(), offset, size],
        true,
    );
    assert_eq!(
        system.current, BACKING,
        "the backing server serves the call"
    );
    invoke(
        system,
        memory,
        BACKING,
        CNODE_SLOT,
        CNodeDelete,
        [11, 0, 0, 0],
    );
    invoke(
        system,
        memory,
        BACKING,
        RANGE,
        FrameCarve,
        [offset, size, 11, 0],
    );
    assert_eq!(
        error_of(system, BACKING),
        None,
        "carve {size:#x} at {offset:#x}"
    );
    memory
        .0
        .insert((system.tcb(BACKING).ipc_buffer, IPC_BUFFER_SEND_CAP), 11);
    syscall(
        system,
        memory,
        BACKING,
        Syscall::ReplyRecv,
        &[
            BACKING_EP,
            MessageInfo::new(0, 1, 0).raw(),
            0,
            0,
            0,
            0,
            REPLY_SLOT,
        ],
        true,
    );
}

/// The backing server waits for its first request.
fn backing_waits(system: &mut System<'_>, memory: &mut MockMemory) {
    syscall(
        system,
        memory,
        BACKING,
        Syscall::Recv,
        &[BACKING_EP, 0, 0, 0, 0, 0, REPLY_SLOT],
        true,
    );
}

#[test]
fn a_guest_mapped_as_the_servers_map_it_translates_only_to_its_own_ram() {
    let mut pools = pools(&[50, 40, 60]);
    let mut memory = MockMemory::default();
    let mut system = booted(&mut pools);
    let mut vspaces = [VSpaceInfo { free_tables: 64 }];
    system.vspaces = &mut vspaces;
    let mut tables = GuestTables::new();
    assert_eq!(tables.leaves(), [], "the boot code maps nothing");
    backing_waits(&mut system, &mut memory);
    // Blocks 1..3 as 2 MiB blocks, and four pages of block 0, each in its own slot.
    let frames = [
        (BLOCK, BLOCK, 6),
        (2 * BLOCK, BLOCK, 7),
        (3 * BLOCK, BLOCK, 11),
        (0, PAGE, 12),
        (PAGE, PAGE, 13),
        (0x10_0000, PAGE, 14),
        (BLOCK - PAGE, PAGE, 15),
    ];
    for (offset, size, slot) in frames {
        frame_for(&mut system, &mut memory, offset, size, slot);
        let rwx = MapAttributes(MapAttributes::WRITE.0 | MapAttributes::EXECUTE.0);
        let ipa = GUEST_RAM + offset;
        let effect = invoke(
            &mut system,
            &mut memory,
            MMU,
            VSPACE,
            VSpaceMap,
            [slot, ipa, rwx.0, 0],
        );
        assert_eq!(error_of(&system, MMU), None, "map {size:#x} at {ipa:#x}");
        tables.apply(&mut system, effect);
        assert_confined(&tables, "honest mapping");
    }
    let mut leaves = tables.leaves();
    leaves.sort_unstable();
    let mut expected: Vec<_> = frames
        .iter()
        .map(|&(offset, size, _)| (GUEST_RAM + offset, size, VM_RAM.0 + offset))
        .collect();
    expected.sort_unstable();
    assert_eq!(
        leaves, expected,
        "exactly the frames lent, each at its own RAM offset"
    );
    // The guest-physical addresses where the kernel lives in physical memory hold guest RAM.
    for ipa in [KERNEL_IMAGE.0, FIRMWARE.0] {
        let pa = stage2::translate(&tables, tables.root, ipa).map(|(pa, _)| pa);
        assert_eq!(pa, Some(VM_RAM.0 + (ipa - GUEST_RAM)), "IPA {ipa:#x}");
    }
    for (start, _) in DEVICES {
        assert_eq!(stage2::translate(&tables, tables.root, start), None);
    }
}

/// A step of a hostile mmu-server, memory-backing server or device server.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `who` carves from its range (any offset, aligned or not, inside or past it).
    Carve {
        who: u8,
        offset: u64,
        block: bool,
        slot: u64,
    },
    /// `who` copies within its CNode.
    Copy {
        who: u8,
        from: u64,
        to: u64,
        rights: u64,
    },
    /// `who` deletes a slot.
    Delete {
        who: u8,
        slot: u64,
    },
    /// `who` revokes its range.
    Revoke {
        who: u8,
    },
    /// The backing server lends its `from` into the mmu-server's `to` (a FrameFor reply).
    Lend {
        from: u64,
        to: u64,
    },
    /// A FrameFor round trip as the servers make it, at any offset: the backing server carves
    /// there and lends the frame into the mmu-server's `to`, which maps it at its guest address.
    FrameFor {
        offset: u64,
        block: bool,
        to: u64,
        attributes: u64,
    },
    /// The device server offers its `from` to the mmu-server, which accepts into `to`.
    Offer {
        from: u64,
        to: u64,
    },
    /// The mmu-server maps its `slot` at `ipa` with `attributes` bits.
    Map {
        slot: u64,
        ipa: u64,
        attributes: u64,
    },
    Unmap {
        ipa: u64,
        block: bool,
    },
    WriteProtect {
        ipa: u64,
        len: u64,
    },
}

fn holder(who: u8) -> crate::TcbId {
    [MMU, BACKING, DEVICE][usize::from(who % 3)]
}

/// IPAs a hostile mmu-server would try: inside the guest's RAM window, where the kernel, the
/// servers, the DMA region and the devices are physically (identity), the top of the IPA
/// space, beyond it, unaligned.
fn ipa() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0..(VM_RAM.1 - VM_RAM.0) / PAGE).prop_map(|page| GUEST_RAM + page * PAGE),
        2 => prop::sample::select(&[
            FIRMWARE.0, KERNEL_IMAGE.0, KERNEL_OBJECTS.0, TABLE_POOL, SERVER_FRAMES.0, DMA.0,
            VM_RAM.0, DEVICES[0].0, DEVICES[1].0, 0, stage2::IPA_LIMIT - BLOCK,
            stage2::IPA_LIMIT - PAGE, stage2::IPA_LIMIT, !(PAGE - 1),
        ][..]),
        1 => any::<u64>(),
    ]
}

/// Mostly a few free slots, so that steps meet on the same capabilities.
fn slot() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 11..15u64, 3 => 0..16u64, 1 => Just(u64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    // Inside the RAM, at its end and past it, anywhere.
    let size = VM_RAM.1 - VM_RAM.0;
    let offset = prop_oneof![
        4 => (0..2 * size / PAGE).prop_map(|page| page * PAGE),
        2 => (0..8 * BLOCK / PAGE).prop_map(move |page| (size - 4 * BLOCK) + page * PAGE),
        1 => any::<u64>(),
    ];
    prop_oneof![
        3 => (offset.clone(), any::<bool>(), slot(), 0..8u64)
            .prop_map(|(offset, block, to, attributes)| Op::FrameFor { offset, block, to, attributes }),
        3 => (0..3u8, offset, any::<bool>(), slot())
            .prop_map(|(who, offset, block, slot)| Op::Carve { who, offset, block, slot }),
        1 => (0..3u8, slot(), slot(), any::<u64>())
            .prop_map(|(who, from, to, rights)| Op::Copy { who, from, to, rights }),
        1 => (0..3u8, slot()).prop_map(|(who, slot)| Op::Delete { who, slot }),
        1 => (0..3u8).prop_map(|who| Op::Revoke { who }),
        2 => (slot(), slot()).prop_map(|(from, to)| Op::Lend { from, to }),
        1 => (slot(), slot()).prop_map(|(from, to)| Op::Offer { from, to }),
        5 => (slot(), ipa(), 0..8u64).prop_map(|(slot, ipa, attributes)| Op::Map { slot, ipa, attributes }),
        1 => (ipa(), any::<bool>()).prop_map(|(ipa, block)| Op::Unmap { ipa, block }),
        1 => (ipa(), prop_oneof![Just(BLOCK), Just(16 * BLOCK), any::<u64>()])
            .prop_map(|(ipa, len)| Op::WriteProtect { ipa, len }),
    ]
}

/// The mmu-server calls the backing server (accepting a capability into `receive`), which
/// then runs: the backing server acts only while it serves a request, as the real one does.
/// False when the call did not reach it (the mmu-server deleted or copied over nothing: its
/// endpoint slots are never deleted, see [`step`]).
fn request(system: &mut System<'_>, memory: &mut MockMemory, receive: u64) -> bool {
    memory.0.insert(
        (system.tcb(MMU).ipc_buffer, IPC_BUFFER_RECEIVE_SLOT),
        receive,
    );
    syscall(
        system,
        memory,
        MMU,
        Syscall::Call,
        &[BACKING_EP, MessageInfo::new(1, 0, 0).raw()],
        true,
    );
    system.current == BACKING
}

/// The backing server answers the request it serves, lending its `lend` slot (0: nothing).
fn answer(system: &mut System<'_>, memory: &mut MockMemory, lend: u64) {
    memory
        .0
        .insert((system.tcb(BACKING).ipc_buffer, IPC_BUFFER_SEND_CAP), lend);
    let caps = u64::from(lend != 0);
    syscall(
        system,
        memory,
        BACKING,
        Syscall::ReplyRecv,
        &[
            BACKING_EP,
            MessageInfo::new(0, caps, 0).raw(),
            0,
            0,
            0,
            0,
            REPLY_SLOT,
        ],
        true,
    );
}

/// Brings the servers back to where each can take its turn, after a step that left one
/// blocked: a capability of the backing server's endpoint copied where a frame was expected
/// made an invocation a call to it (it answers), or the device server's endpoint capability
/// copied there made the device server a sender to the mmu-server (which takes the message
/// without a reply object, so a call is answered `Cancelled`).
fn settle(system: &mut System<'_>, memory: &mut MockMemory) {
    if matches!(system.tcb(MMU).state, ThreadState::BlockedOnReply { .. }) {
        answer(system, memory, 0);
    }
    if matches!(system.tcb(DEVICE).state, ThreadState::BlockedOnSend { .. }) {
        memory
            .0
            .insert((system.tcb(MMU).ipc_buffer, IPC_BUFFER_RECEIVE_SLOT), 0);
        syscall(
            system,
            memory,
            MMU,
            Syscall::Recv,
            &[EP, 0, 0, 0, 0, 0, 0],
            true,
        );
    }
    for id in [MMU, DEVICE] {
        assert!(system.tcb(id).state.is_runnable(), "thread {id} can go on");
    }
}

/// Runs one step; refusals are part of the game (each must change nothing, which the walk
/// after it would show if it mapped something). Deletions spare the endpoint slots the servers
/// talk through, so that every thread can go on taking its turn.
fn step(system: &mut System<'_>, memory: &mut MockMemory, tables: &mut GuestTables, op: Op) {
    settle(system, memory);
    let who = match op {
        Op::Carve { who, .. } | Op::Copy { who, .. } | Op::Delete { who, .. } => holder(who),
        Op::Revoke { who } => holder(who),
        _ => MMU,
    };
    if let Op::Delete { slot, .. } = op
        && (slot == EP || slot == BACKING_EP)
    {
        return;
    }
    if who == BACKING && !request(system, memory, 0) {
        return;
    }
    let effect = match op {
        Op::Carve {
            offset,
            block,
            slot,
            ..
        } => {
            let size = if block { BLOCK } else { PAGE };
            invoke(
                system,
                memory,
                who,
                RANGE,
                FrameCarve,
                [offset, size, slot, 0],
            )
        }
        Op::Copy {
            from, to, rights, ..
        } => invoke(
            system,
            memory,
            who,
            CNODE_SLOT,
            CNodeCopy,
            [from, to, rights, 0],
        ),
        Op::Delete { slot, .. } => invoke(
            system,
            memory,
            who,
            CNODE_SLOT,
            CNodeDelete,
            [slot, 0, 0, 0],
        ),
        Op::Revoke { .. } => invoke(system, memory, who, RANGE, FrameRevoke, [0; 4]),
        Op::Lend { from, to } => {
            if request(system, memory, to) {
                answer(system, memory, from);
            }
            Effect::None
        }
        Op::FrameFor {
            offset,
            block,
            to,
            attributes,
        } => {
            let size = if block { BLOCK } else { PAGE };
            if request(system, memory, to) {
                invoke(
                    system,
                    memory,
                    BACKING,
                    CNODE_SLOT,
                    CNodeDelete,
                    [11, 0, 0, 0],
                );
                invoke(
                    system,
                    memory,
                    BACKING,
                    RANGE,
                    FrameCarve,
                    [offset, size, 11, 0],
                );
                answer(system, memory, 11);
            }
            let ipa = GUEST_RAM.wrapping_add(offset);
            invoke(
                system,
                memory,
                MMU,
                VSPACE,
                VSpaceMap,
                [to, ipa, attributes, 0],
            )
        }
        Op::Offer { from, to } => {
            memory
                .0
                .insert((system.tcb(MMU).ipc_buffer, IPC_BUFFER_RECEIVE_SLOT), to);
            syscall(
                system,
                memory,
                MMU,
                Syscall::Recv,
                &[EP, 0, 0, 0, 0, 0, 0],
                true,
            );
            assert!(matches!(
                system.tcb(MMU).state,
                ThreadState::BlockedOnReceive { .. }
            ));
            memory
                .0
                .insert((system.tcb(DEVICE).ipc_buffer, IPC_BUFFER_SEND_CAP), from);
            syscall(
                system,
                memory,
                DEVICE,
                Syscall::Send,
                &[EP, MessageInfo::new(0, 1, 0).raw()],
                true,
            );
            assert_eq!(
                system.tcb(MMU).state,
                ThreadState::Running,
                "the offer arrived"
            );
            Effect::None
        }
        Op::Map {
            slot,
            ipa,
            attributes,
        } => invoke(
            system,
            memory,
            MMU,
            VSPACE,
            VSpaceMap,
            [slot, ipa, attributes, 0],
        ),
        Op::Unmap { ipa, block } => {
            let size = if block { BLOCK } else { PAGE };
            invoke(system, memory, MMU, VSPACE, VSpaceUnmap, [ipa, size, 0, 0])
        }
        Op::WriteProtect { ipa, len } => invoke(
            system,
            memory,
            MMU,
            VSPACE,
            VSpaceWriteProtect,
            [ipa, len, 0, 0],
        ),
    };
    tables.apply(system, effect);
    if who == BACKING && system.current == BACKING {
        answer(system, memory, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the holders of the guest's VSpace, its RAM and a DMA region do (carve anywhere,
    /// copy asking for any rights, lend, offer without GRANT, map any slot at any IPA, unmap,
    /// write-protect, delete, revoke), every translation of the guest's whole IPA space stays
    /// inside its RAM region, every table is one of its own live table pages, and after the
    /// RAM range is revoked nothing is mapped.
    #[test]
    fn no_sequence_of_invocations_maps_anything_but_the_vms_ram_into_the_guest(
        ops in prop::collection::vec(op(), 1..64)
    ) {
        let mut pools = pools(&[50, 40, 60]);
        let mut memory = MockMemory::default();
        let mut system = booted(&mut pools);
        let mut vspaces = [VSpaceInfo { free_tables: 64 }];
        system.vspaces = &mut vspaces;
        let mut tables = GuestTables::new();
        backing_waits(&mut system, &mut memory);
        for op in &ops {
            step(&mut system, &mut memory, &mut tables, *op);
            assert_confined(&tables, &std::format!("after {op:?}"));
        }
        // Revoked as a VM reset revokes it (whether or not the backing server still holds its
        // range capability).
        let effect = Effect::Revoke {
            region: 0,
            first_page: (VM_RAM.0 >> 12) as u32,
            pages: ((VM_RAM.1 - VM_RAM.0) >> 12) as u32,
        };
        tables.apply(&mut system, effect);
        prop_assert_eq!(tables.leaves(), std::vec![], "revoking the RAM unmaps every frame of it");
    }
}

#[test]
fn the_mmu_server_cannot_map_a_frame_range_its_vspace_or_anything_that_is_not_a_carved_frame() {
    let mut pools = pools(&[50, 40, 60]);
    let mut memory = MockMemory::default();
    let mut system = booted(&mut pools);
    let mut vspaces = [VSpaceInfo { free_tables: 64 }];
    system.vspaces = &mut vspaces;
    // Even holding a range itself (a manifest could give it `frames:` of a region), the range
    // is no mappable frame: only what is carved from it is.
    let vm_ram = FrameCap::new(0, (VM_RAM.0 >> 12) as u32, 2048, false);
    put_cap(&mut system, MMU, 6, Cap::Frame(vm_ram));
    for (slot, expected) in [
        (6, abi::KernelError::InvalidArgument { index: 0 }),
        (VSPACE, abi::KernelError::WrongObjectType { slot: VSPACE }),
        (
            CNODE_SLOT,
            abi::KernelError::WrongObjectType { slot: CNODE_SLOT },
        ),
        (
            REPLY_SLOT,
            abi::KernelError::WrongObjectType { slot: REPLY_SLOT },
        ),
        (EP, abi::KernelError::WrongObjectType { slot: EP }),
        // An empty slot is no capability.
        (7, abi::KernelError::InvalidCapability { slot: 7 }),
        (16, abi::KernelError::InvalidCapability { slot: 16 }),
        (
            u64::MAX,
            abi::KernelError::InvalidCapability { slot: u64::MAX },
        ),
    ] {
        run_as(&mut system, MMU);
        let effect = invoke(
            &mut system,
            &mut memory,
            MMU,
            VSPACE,
            VSpaceMap,
            [slot, GUEST_RAM, 0, 0],
        );
        assert_eq!(effect, Effect::None);
        assert_eq!(error_of(&system, MMU), Some(expected), "map slot {slot:#x}");
    }
}
