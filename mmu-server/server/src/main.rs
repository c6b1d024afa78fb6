//! The mmu-server: owns a VM's second-stage address space. Its memory slots come from its boot
//! info (the VM's RAM, backed by region = VM index at the memory-backing server), so a restart
//! rebuilds them. It answers the vmm's requests (`mmu_api`) with mmu-core's stage-2 engine,
//! which asks the memory-backing server for frames (lent as capabilities with the reply) and
//! maps them through the kernel's VSpace invocations (the prejudgement of every change runs in
//! the kernel's mapping path).
//!
//! A mapping belongs to the frame capability that made it: deleting the capability unmaps it,
//! if the kernel's table still maps that frame there. The lent frames arrive in a ring of CNode
//! slots reused in turn, with no bookkeeping per map: reusing a slot deletes its old capability,
//! which removes that frame's translation if it is still live (the guest faults the page in
//! again, at most once per turn of the ring) and nothing when a later map or unmap replaced it.
//! A (re)started server deletes the whole ring first, which unmaps whatever a capability from
//! before the restart still mapped.
//!
//! It runs the serve loop of `userlib::server` (malformed requests rejected); [`Mmu`]'s
//! `start` is the rebuild above.
#![no_std]
#![no_main]

use abi::message::{IPC_BUFFER_RECEIVE_SLOT, MAX_MESSAGE_WORDS};
use abi::vm::MapAttributes;
use abi::{CNODE_SLOT, InvocationLabel, KernelError};
use ipc::Transport;
use kernel_core::stage2::{Attributes, MapError, PageSize};
use mmu_api::{SlotFlags, SlotSpec};
use mmu_core::stage2::{
    Backing, BackingError, Frame, Stage2, Stage2Mapper, frame_from_response, frame_request,
};
use userlib::server::{Caller, Reply};
use userlib::{ipc_buffer, println, syscall};

userlib::entry!(main);

/// Memory slots one mmu-server keeps.
const SLOTS: usize = 8;
/// Dirty-log windows one mmu-server keeps: the most a manifest may give its VM
/// (`dirty_log_windows`); the boot info says how many of them the VM may use.
const WINDOWS: usize = mmu_core::stage2::MAX_DIRTY_LOG_WINDOWS;
/// CNode slots used to receive lent frames (the manifest gives the server enough).
const FRAME_SLOTS: u64 = 768;

/// The memory-backing server over IPC: each lent frame arrives as a capability in the next
/// slot of a ring of `FRAME_SLOTS` CNode slots from `first_slot` on, reused in turn.
struct MemoryServer {
    endpoint: u64,
    first_slot: u64,
    next: u64,
}

impl MemoryServer {
    /// Deletes every ring slot: each deletion unmaps what a capability from before a restart
    /// still maps.
    fn clear_ring(&mut self) {
        for index in 0..FRAME_SLOTS {
            let slot = self.first_slot + index;
            syscall::invoke(CNODE_SLOT, InvocationLabel::CNodeDelete, [slot, 0, 0, 0]);
        }
        self.next = 0;
    }

    /// The next ring slot, emptied for the next lent frame. Deleting its old capability removes
    /// that frame's translation if the table still maps it (the guest faults it in again), and
    /// nothing if a later map replaced it or an unmap removed it.
    fn take_slot(&mut self) -> u64 {
        let slot = self.first_slot + self.next;
        self.next = (self.next + 1) % FRAME_SLOTS;
        syscall::invoke(CNODE_SLOT, InvocationLabel::CNodeDelete, [slot, 0, 0, 0]);
        slot
    }
}

impl Backing for MemoryServer {
    fn frame_for(
        &mut self,
        region: u16,
        offset: u64,
        size: PageSize,
    ) -> Result<Frame, BackingError> {
        let slot = self.take_slot();
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

    fn before_retry(&mut self, _attempt: u8) {
        syscall::yield_now();
    }
}

/// The guest's VSpace through the kernel.
struct Kernel {
    vspace: u64,
}

fn refused(info: abi::MessageInfo, words: [u64; 4]) -> MapError {
    match KernelError::decode(info.label(), [words[0], words[1], words[2]]) {
        Some(KernelError::IllegalOperation { .. }) => MapError::OutOfTables,
        _ => MapError::BadAddress,
    }
}

impl Stage2Mapper for Kernel {
    fn cache_mmio(&mut self, page: u64) {
        // The kernel refuses where no route covers the page, during an update, or with markers
        // off; each refusal leaves the slow path as it was, so the answer is not needed.
        let _ = syscall::invoke(self.vspace, InvocationLabel::VSpaceMapMmio, [page, 0, 0, 0]);
    }

    fn memory_map_update(&mut self, begin: bool) {
        let phase = if begin {
            abi::mmio::UPDATE_BEGIN
        } else {
            abi::mmio::UPDATE_END
        };
        let _ = syscall::invoke(
            self.vspace,
            InvocationLabel::VSpaceMmioUpdate,
            [phase, 0, 0, 0],
        );
    }

    fn map(
        &mut self,
        ipa: u64,
        frame: Frame,
        _size: PageSize,
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
        if info.is_error() {
            Err(refused(info, words))
        } else {
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
            at += block;
        }
        Ok(())
    }
}

/// The server's state, rebuilt on every start from the boot info: the RAM slot is set up again
/// and the ring of lent-frame slots is emptied, which unmaps what a previous life still mapped
/// (the guest faults its pages in again). Dirty-log windows do not survive; the VM's limit on
/// them (`VmInfo::dirty_log_windows`) is read again.
struct Mmu {
    engine: Stage2<SLOTS, WINDOWS>,
    backing: MemoryServer,
    kernel: Kernel,
}

impl userlib::server::Server for Mmu {
    type Protocol = mmu_api::Mmu;
    // `mmu`, or `mmu-<vm>` in a system with one mmu-server per VM (endpoint names are global).
    const ENDPOINT: &'static str = "mmu";

    fn start() -> Self {
        let blob = userlib::caps::bootinfo();
        let mut vm = None;
        bootdesc::bootinfo::for_each_vm(blob, |info| {
            vm = Some(info);
            false
        });
        let Some(vm) = vm else {
            println!("mmu: no VM in the boot info; nothing to serve");
            userlib::crash_with_bad_access();
        };
        // `memory`, or `memory-<vm>` with one memory-backing server per VM.
        let Some(memory) = userlib::caps::try_vm_cap("memory", vm.name) else {
            panic!("no `memory` or `memory-{}` capability", vm.name);
        };
        let first_slot = u64::from(bootdesc::bootinfo::highest_slot(blob).unwrap_or(0)) + 1;
        let mut backing = MemoryServer {
            endpoint: memory,
            first_slot,
            next: 0,
        };
        backing.clear_ring();
        let Some(vspace) = userlib::caps::try_cap_named("vspace:", vm.name) else {
            panic!("no `vspace:{}` capability", vm.name);
        };
        let mut kernel = Kernel { vspace };
        let mut engine: Stage2<SLOTS, WINDOWS> = Stage2::new();
        let windows = engine.set_dirty_log_limit(vm.dirty_log_windows);
        if windows != vm.dirty_log_windows {
            println!(
                "mmu: `{}` asks for {} dirty-log windows, this server holds {windows}",
                vm.name, vm.dirty_log_windows
            );
        }
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
        Self {
            engine,
            backing,
            kernel,
        }
    }

    fn handle(&mut self, _caller: Caller, request: mmu_api::Request) -> Reply<mmu_api::Response> {
        self.engine
            .handle(request, &mut self.backing, &mut self.kernel)
            .into()
    }
}

fn main() -> ! {
    userlib::server::run::<Mmu>()
}
