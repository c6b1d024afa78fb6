//! The mmu-server: owns a VM's second-stage address space. Its memory slots come from its boot
//! info (the VM's RAM, backed by region = VM index at the memory-backing server), so a restart
//! rebuilds them. It answers the vmm's requests (`mmu_api`) with mmu-core's stage-2 engine,
//! which asks the memory-backing server for frames (lent as capabilities with the reply) and
//! maps them through the kernel's VSpace invocations (the prejudgement of every change runs in
//! the kernel's mapping path).
//!
//! A mapping belongs to the frame capability that made it: deleting the capability unmaps it.
//! The lent frames arrive in a ring of CNode slots whose owners mmu-core's `HeldFrames` keeps
//! track of, so a slot is reused silently when its capability maps nothing any more, and a live
//! mapping is retired (unmapped, the guest faults it in again) only when every slot holds one.
//! A (re)started server knows nothing of what its slots held: it deletes them all first, which
//! unmaps whatever a capability from before a restart still mapped.
#![no_std]
#![no_main]

use abi::message::{IPC_BUFFER_RECEIVE_SLOT, MAX_MESSAGE_WORDS};
use abi::vm::MapAttributes;
use abi::{CNODE_SLOT, InvocationLabel, KernelError};
use core::cell::RefCell;
use ipc::Transport;
use kernel_core::stage2::{Attributes, MapError, PageSize};
use mmu_api::{SlotFlags, SlotSpec};
use mmu_core::stage2::{
    Backing, BackingError, Frame, HeldFrames, Stage2, Stage2Mapper, frame_from_response,
    frame_request,
};
use userlib::{ipc_buffer, println, syscall};

userlib::entry!(main);

/// Memory slots one mmu-server keeps.
const SLOTS: usize = 8;
/// Dirty-log windows one mmu-server keeps.
const WINDOWS: usize = 4;
/// CNode slots used to receive lent frames (the manifest gives the server enough).
const FRAME_SLOTS: usize = 768;

/// The ring of frame slots, from CNode slot `first` on, and which mapping each one's
/// capability owns.
struct Ring {
    first: u64,
    held: RefCell<HeldFrames<FRAME_SLOTS>>,
}

impl Ring {
    /// Deletes every ring slot: at start the server has no record of what they hold, and each
    /// deletion unmaps what a capability from before a restart still maps.
    fn clear(&self) {
        for index in 0..FRAME_SLOTS as u64 {
            let slot = self.first + index;
            syscall::invoke(CNODE_SLOT, InvocationLabel::CNodeDelete, [slot, 0, 0, 0]);
        }
        *self.held.borrow_mut() = HeldFrames::new();
    }

    /// A slot for the next lent frame, emptied: one whose capability maps nothing when there is
    /// one, else the oldest live one, whose deletion retires (unmaps) its mapping.
    fn take(&self) -> u64 {
        let taken = self.held.borrow_mut().take();
        if let Some((ipa, size)) = taken.retires {
            defmt::debug!(
                "mmu: every frame slot is mapped; retiring the mapping at {=u64:#x} ({=u64} bytes)",
                ipa,
                size.bytes()
            );
        }
        let slot = self.first + taken.index as u64;
        syscall::invoke(CNODE_SLOT, InvocationLabel::CNodeDelete, [slot, 0, 0, 0]);
        slot
    }

    /// The ring index of CNode slot `slot`.
    fn index(&self, slot: u32) -> usize {
        u64::from(slot).wrapping_sub(self.first) as usize
    }
}

/// The memory-backing server over IPC: each lent frame arrives as a capability in a ring slot.
struct MemoryServer<'a> {
    endpoint: u64,
    ring: &'a Ring,
}

impl MemoryServer<'_> {
    /// Asks for the frame into `slot`; the frame (naming `slot`) or why none came.
    fn lend_into(
        &mut self,
        slot: u64,
        region: u16,
        offset: u64,
        size: PageSize,
    ) -> Result<Frame, BackingError> {
        ipc_buffer::write(IPC_BUFFER_RECEIVE_SLOT, slot);
        let request =
            ipc::encode(&frame_request(region, offset, size)).map_err(|_| BackingError::Failed)?;
        let (info, words) = userlib::Kernel.call(self.endpoint, &request);
        ipc_buffer::write(IPC_BUFFER_RECEIVE_SLOT, 0);
        // The backing server restarting under the request is its state changing under it:
        // FrameFor is idempotent, so the bounded retry asks the fresh server again.
        let response = match ipc::interpret::<memory_api::Response>(
            info,
            &words[..MAX_MESSAGE_WORDS],
        ) {
            Ok(response) => response,
            Err(ipc::CallError::Restarted { generation }) => {
                println!(
                    "mmu: the memory-backing server restarted (generation {generation}); asking again"
                );
                return Err(BackingError::Retry);
            }
            Err(error) => {
                println!("mmu: the memory-backing server failed: {error}");
                return Err(BackingError::Failed);
            }
        };
        let frame = frame_from_response(response)?;
        if info.extra_caps() != 1 {
            println!("mmu: the memory-backing server lent no frame capability");
            return Err(BackingError::Failed);
        }
        Ok(Frame {
            index: slot as u32,
            ..frame
        })
    }
}

impl Backing for MemoryServer<'_> {
    fn frame_for(
        &mut self,
        region: u16,
        offset: u64,
        size: PageSize,
    ) -> Result<Frame, BackingError> {
        let slot = self.ring.take();
        let lent = self.lend_into(slot, region, offset, size);
        if lent.is_err() {
            // Whatever arrived (if anything) maps nothing: the slot is silent again.
            let index = self.ring.index(slot as u32);
            self.ring.held.borrow_mut().released(index);
        }
        lent
    }

    fn before_retry(&mut self, _attempt: u8) {
        syscall::yield_now();
    }
}

/// The guest's VSpace through the kernel; every change is noted in the ring.
struct Kernel<'a> {
    vspace: u64,
    ring: &'a Ring,
}

fn refused(info: abi::MessageInfo, words: [u64; 4]) -> MapError {
    match KernelError::decode(info.label(), [words[0], words[1], words[2]]) {
        Some(KernelError::IllegalOperation { .. }) => MapError::OutOfTables,
        _ => MapError::BadAddress,
    }
}

impl Stage2Mapper for Kernel<'_> {
    fn map(
        &mut self,
        ipa: u64,
        frame: Frame,
        size: PageSize,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        let mut bits = 0;
        if attributes.writable {
            bits |= MapAttributes::WRITE.0;
        }
        if attributes.executable {
            bits |= MapAttributes::EXECUTE.0;
        }
        let (info, words) = syscall::invoke(
            self.vspace,
            InvocationLabel::VSpaceMap,
            [u64::from(frame.index), ipa, bits, 0],
        );
        let index = self.ring.index(frame.index);
        let mut held = self.ring.held.borrow_mut();
        if info.is_error() {
            held.released(index);
            Err(refused(info, words))
        } else {
            // The kernel moved the record of anything this map replaced to this capability.
            held.mapped(index, ipa, size);
            Ok(())
        }
    }

    fn write_protect(&mut self, ipa: u64, len: u64) -> Result<(), MapError> {
        // The kernel does a bounded amount of the range per call and answers where it stopped.
        let end = ipa + len;
        let mut at = ipa;
        while at < end {
            let (info, words) = syscall::invoke(
                self.vspace,
                InvocationLabel::VSpaceWriteProtect,
                [at, end - at, 0, 0],
            );
            if info.is_error() {
                return Err(refused(info, words));
            }
            // A kernel that answered no progress would loop forever: treat it as a refusal.
            if words[0] <= at || words[0] > end {
                return Err(MapError::BadAddress);
            }
            at = words[0];
        }
        Ok(())
    }

    fn unmap(&mut self, ipa: u64, len: u64) -> Result<(), MapError> {
        let block = PageSize::Size2M.bytes();
        let mut at = ipa & !(block - 1);
        while at < ipa + len {
            let (info, words) =
                syscall::invoke(self.vspace, InvocationLabel::VSpaceUnmap, [at, block, 0, 0]);
            if info.is_error() {
                return Err(refused(info, words));
            }
            self.ring.held.borrow_mut().unmapped(at, block);
            at += block;
        }
        Ok(())
    }
}

fn main() -> ! {
    let blob = userlib::caps::bootinfo();
    let ring = Ring {
        first: u64::from(bootdesc::bootinfo::highest_slot(blob).unwrap_or(0)) + 1,
        held: RefCell::new(HeldFrames::new()),
    };
    ring.clear();
    let mut backing = MemoryServer {
        endpoint: userlib::cap("memory"),
        ring: &ring,
    };
    let mut vm = None;
    bootdesc::bootinfo::for_each_vm(blob, |info| {
        vm = Some(info);
        false
    });
    let Some(vm) = vm else {
        println!("mmu: no VM in the boot info; nothing to serve");
        userlib::crash_with_bad_access();
    };
    let Some(vspace) = userlib::caps::try_cap_named("vspace:", vm.name) else {
        panic!("no `vspace:{}` capability", vm.name);
    };
    let mut kernel = Kernel {
        vspace,
        ring: &ring,
    };
    let mut engine: Stage2<SLOTS, WINDOWS> = Stage2::new();
    let ram = SlotSpec {
        ipa: vm.ram_base,
        len: vm.ram_size,
        region: vm.index,
        offset: 0,
        flags: SlotFlags {
            read_only: false,
            allow_blocks: true,
        },
    };
    if let Err(error) = engine.set_slot(0, ram, &mut kernel) {
        println!("mmu: cannot set up the RAM slot of `{}`: {error}", vm.name);
    }
    defmt::info!(
        "mmu: RAM of {=str} at {=u64:#x}, {=u64} bytes",
        vm.name,
        vm.ram_base,
        vm.ram_size
    );
    let crash_at = userlib::caps::inject_fault_at_request();
    let mut served = 0u32;
    ipc::serve::<mmu_api::Mmu>(
        &mut userlib::Kernel,
        userlib::cap("mmu"),
        |_badge, request| {
            served += 1;
            if crash_at == Some(served) {
                println!("mmu: injected fault at request {served}");
                userlib::crash_with_bad_access();
            }
            engine.handle(request, &mut backing, &mut kernel)
        },
    )
}
