//! The memory-backing server: owns each VM's RAM (a frame-range capability named `ram:<vm>`)
//! and lends frames of it to the mmu-server on the `memory` endpoint (`memory-<vm>` when each VM
//! has its own memory-backing server). A lent frame is carved from the range into a scratch
//! slot and travels with the reply (the caller named a receive slot); revoking the range takes every lent frame back, mappings included. The VM's own
//! mmu-server (named by its badge in the boot info) is lent frames with every right the range
//! has (read, write, execute: it maps guest RAM for the guest); anyone else gets a read-only
//! copy, derived before the reply, so it can never map the frame writable or executable.
//!
//! It runs the serve loop of `userlib::server` (malformed requests rejected); its state is
//! rebuilt from the boot info on every start.
#![no_std]
#![no_main]

use abi::{CNODE_SLOT, InvocationLabel, Rights};
use drv_memory_core::{Backing, Decision, LendRights};
use memory_api::{FrameSize, Lent, Memory, MemoryError, Request, Response};
use userlib::println;
use userlib::server::{Caller, Reply};
use userlib::syscall;

userlib::entry!(main);

/// The server's state, rebuilt from the boot info on every start: the regions and their
/// mappers, and the loan counter. Loans from before a restart stay with their borrowers.
struct MemoryBacking {
    backing: Backing,
    /// The carved frame's slot; the slot after it holds its read-only copy for a borrower that
    /// is not the mmu-server.
    scratch: u64,
    lent: u32,
}

impl userlib::server::Server for MemoryBacking {
    type Protocol = Memory;
    // `memory`, or `memory-<vm>` in a system with one memory-backing server per VM (endpoint
    // names are global).
    const ENDPOINT: &'static str = "memory";

    fn start() -> Self {
        let blob = userlib::caps::bootinfo();
        let scratch = u64::from(bootdesc::bootinfo::highest_slot(blob).unwrap_or(0)) + 1;
        let mut backing = Backing::new();
        bootdesc::bootinfo::for_each_vm(blob, |vm| {
            let Some(slot) = userlib::caps::try_cap_named("ram:", vm.name) else {
                return true;
            };
            if let Err(error) = backing.add_region(vm.index, vm.ram_size, slot) {
                println!("memory: cannot back vm `{}`: {error}", vm.name);
            }
            if let Some(badge) = vm.mmu_badge {
                backing.set_mapper(vm.index, badge);
            }
            true
        });
        defmt::info!("memory: serving");
        Self {
            backing,
            scratch,
            lent: 0,
        }
    }

    fn handle(&mut self, caller: Caller, request: Request) -> Reply<Response> {
        match request {
            Request::FrameFor {
                region,
                offset,
                size,
            } => self.frame_for(caller, region, offset, size),
        }
    }
}

impl MemoryBacking {
    /// Answers FrameFor: the backing's decision, and for a loan the carved frame, lent to
    /// `caller` with the rights its badge earns.
    fn frame_for(
        &mut self,
        caller: Caller,
        region: u16,
        offset: u64,
        size: FrameSize,
    ) -> Reply<Response> {
        let (range_slot, offset, size) = match self.backing.frame_for(region, offset, size) {
            Decision::Answer(response) => return response.into(),
            Decision::Lend {
                range_slot,
                offset,
                size,
            } => (range_slot, offset, size),
        };
        let rights = self.backing.lend_rights(region, caller.badge);
        match carve(range_slot, offset, size.bytes(), rights, self.scratch) {
            Some(slot) => {
                self.lent += 1;
                let frame = Lent {
                    frame_index: self.lent,
                    size,
                };
                Reply::with_cap(Response::Frame(frame), slot)
            }
            None => Response::Error(MemoryError::OutOfMemory).into(),
        }
    }
}

fn main() -> ! {
    userlib::server::run::<MemoryBacking>()
}

/// Carves `size` bytes at `offset` of the range in `range_slot` into `scratch`, and for a
/// read-only loan derives a read-only copy into `scratch + 1`; the slot to lend. A previous
/// loan's copy goes first from the slot about to be filled (the borrower has its own; they were
/// never mapped, so deleting them unmaps nothing): a full loan, the mmu-server's, on every
/// guest fault, leaves the read-only slot alone and costs one deletion, not two.
fn carve(range_slot: u64, offset: u64, size: u64, rights: LendRights, scratch: u64) -> Option<u64> {
    let read_only = scratch + 1;
    let delete = |slot| syscall::invoke(CNODE_SLOT, InvocationLabel::CNodeDelete, [slot, 0, 0, 0]);
    delete(scratch);
    let args = [offset, size, scratch, 0];
    let (carved, _) = syscall::invoke(range_slot, InvocationLabel::FrameCarve, args);
    if carved.is_error() {
        println!(
            "memory: carving {size:#x} bytes at offset {offset:#x} failed (error {})",
            carved.label()
        );
        return None;
    }
    if rights == LendRights::Full {
        return Some(scratch);
    }
    delete(read_only);
    let read = u64::from(Rights::READ.bits());
    let (copied, _) = syscall::invoke(
        CNODE_SLOT,
        InvocationLabel::CNodeCopy,
        [scratch, read_only, read, 0],
    );
    if copied.is_error() {
        println!(
            "memory: deriving a read-only copy failed (error {})",
            copied.label()
        );
        return None;
    }
    Some(read_only)
}
