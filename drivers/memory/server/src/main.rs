//! The memory-backing server: owns each VM's RAM (a frame-range capability named `ram:<vm>`)
//! and lends frames of it to the mmu-server on the `memory` endpoint (`memory-<vm>` when each VM
//! has its own memory-backing server). A lent frame is carved from the range into a scratch
//! slot and travels with the reply (the caller named a receive slot); revoking the range takes every lent frame back, mappings included. The VM's own
//! mmu-server (named by its badge in the boot info) is lent frames with every right the range
//! has (read, write, execute: it maps guest RAM for the guest); anyone else gets a read-only
//! copy, derived before the reply, so it can never map the frame writable or executable.
#![no_std]
#![no_main]

use abi::message::{IPC_BUFFER_SEND_CAP, MAX_MESSAGE_WORDS, REGISTER_MESSAGE_WORDS};
use abi::{CNODE_SLOT, InvocationLabel, MessageInfo, REPLY_SLOT, Rights};
use drv_memory_core::{Backing, Decision, LendRights};
use memory_api::{Lent, MemoryError, Request, Response};
use userlib::{ipc_buffer, println, syscall};

userlib::entry!(main);

fn main() -> ! {
    // `memory`, or `memory-<vm>` in a system with one memory-backing server per VM (endpoint
    // names are global).
    let mut endpoint = userlib::caps::try_cap("memory");
    bootdesc::bootinfo::for_each_vm(userlib::caps::bootinfo(), |vm| {
        endpoint = endpoint.or_else(|| userlib::caps::try_vm_cap("memory", vm.name));
        endpoint.is_none()
    });
    let Some(endpoint) = endpoint else {
        panic!("no `memory` or `memory-<vm>` capability");
    };
    // The carved frame, and after it its read-only copy for a borrower that is not the
    // mmu-server.
    let scratch =
        u64::from(bootdesc::bootinfo::highest_slot(userlib::caps::bootinfo()).unwrap_or(0)) + 1;
    let mut backing = Backing::new();
    bootdesc::bootinfo::for_each_vm(userlib::caps::bootinfo(), |vm| {
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
    let crash_at = userlib::caps::inject_fault_at_request();
    let mut served = 0u32;
    let mut lent = 0u32;
    defmt::info!("memory: serving");
    let (mut badge, mut info, mut words) = receive(syscall::recv(endpoint, REPLY_SLOT));
    loop {
        served += 1;
        if crash_at == Some(served) {
            println!("memory: injected fault at request {served}");
            userlib::crash_with_bad_access();
        }
        let request =
            ipc::decode::<Request>(info.label(), &words[..info.length().min(MAX_MESSAGE_WORDS)]);
        let mut send = scratch;
        let (response, caps) = match request {
            Err(_) => (None, 0),
            Ok(Request::FrameFor {
                region,
                offset,
                size,
            }) => match backing.frame_for(region, offset, size) {
                Decision::Answer(response) => (Some(response), 0),
                Decision::Lend {
                    range_slot,
                    offset,
                    size,
                } => {
                    let rights = backing.lend_rights(region, badge);
                    match carve(range_slot, offset, size.bytes(), rights, scratch) {
                        Some(slot) => {
                            send = slot;
                            lent += 1;
                            let frame = Lent {
                                frame_index: lent,
                                size,
                            };
                            (Some(Response::Frame(frame)), 1)
                        }
                        None => (Some(Response::Error(MemoryError::OutOfMemory)), 0),
                    }
                }
            },
        };
        let reply = match response.map(|r| ipc::encode(&r)) {
            Some(Ok(encoded)) => encoded,
            _ => ipc::Encoded {
                label: ipc::LABEL_MALFORMED,
                length: 0,
                words: [0; MAX_MESSAGE_WORDS],
            },
        };
        for index in REGISTER_MESSAGE_WORDS..reply.length {
            ipc_buffer::write(index, reply.words[index]);
        }
        ipc_buffer::write(IPC_BUFFER_SEND_CAP, send);
        let message = MessageInfo::new(reply.label, caps, reply.length as u64);
        let registers = [
            reply.words[0],
            reply.words[1],
            reply.words[2],
            reply.words[3],
        ];
        (badge, info, words) = receive(syscall::reply_recv(
            endpoint, REPLY_SLOT, message, registers,
        ));
    }
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

/// Reads a received message's words out of the registers and the IPC buffer.
fn receive(
    (badge, info, registers): syscall::Received,
) -> (u64, MessageInfo, [u64; MAX_MESSAGE_WORDS]) {
    let mut words = [0u64; MAX_MESSAGE_WORDS];
    words[..REGISTER_MESSAGE_WORDS].copy_from_slice(&registers);
    let length = if info.is_error() {
        0
    } else {
        info.length().min(MAX_MESSAGE_WORDS)
    };
    for (index, word) in words
        .iter_mut()
        .enumerate()
        .take(length)
        .skip(REGISTER_MESSAGE_WORDS)
    {
        *word = ipc_buffer::read(index);
    }
    (badge, info, words)
}
