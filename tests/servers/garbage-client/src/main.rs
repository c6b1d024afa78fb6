//! Sends each server of a VM a message that is not its protocol, then a well-formed one: every
//! server must answer the garbage with a typed rejection and go on serving (issue: "a malformed
//! message to each server gets a typed error back and the server keeps serving"). Run as
//! `blk-garbage` it does the same to the physical virtio-blk driver on its `blk` endpoint
//! (tests/manifests/malformed-to-blk.toml).
//!
//! What it attacks is what its capabilities name: `mmu`, `memory` and `pl011`
//! (tests/manifests/malformed-to-vm-servers.toml), and the virtio device servers `vcon` and
//! `vblk` when a VM's `devices` entry lists it in its `clients` (the capability is named after
//! the device server, manifests/src/device_clients.rs; tests/manifests/malformed-to-virtio.toml).
//! Each device server gets every malformed shape a peer can send ([`device_garbage`]), then a
//! well-formed `device_api` read of its MagicValue and DeviceID.
//!
//! With `system` (SystemControl) it ends the system with its failure count as the status;
//! without, it waits on its notification `idle` for ever, so the guest runs on and the VM's vmm
//! ends the system.
#![no_std]
#![no_main]

use abi::MessageInfo;
use abi::mmio::{FLAG_WRITE, REPLY_BUS_ERROR};
use device_api::{Mmio, Request, Response};
use ipc::CallError;
use userlib::{println, syscall};
use virtio_core::mmio::{MAGIC_VALUE, register};

userlib::entry!(main);

/// Garbage: a label claiming 40 bytes, words that are not postcard of any request.
fn garbage(endpoint: u64) -> Result<(), CallError> {
    let (info, words) = syscall::call(endpoint, MessageInfo::new(40, 0, 4), [u64::MAX; 4]);
    ipc::interpret::<()>(info, &words)
}

fn check(what: &str, ok: bool, failures: &mut u32) {
    if ok {
        println!("garbage-client: {what}: ok");
    } else {
        println!("garbage-client: FAILED {what}");
        *failures += 1;
    }
}

fn main() -> ! {
    if userlib::server_name() == "blk-garbage" {
        blk_garbage()
    }
    let mut failures = 0;
    if userlib::caps::try_cap("mmu").is_some() {
        vm_servers(&mut failures);
    }
    // The device IDs of virtio 1.2 §5: 2 a block device, 3 a console.
    for (name, device_id) in [("vcon", 3), ("vblk", 2)] {
        if let Some(endpoint) = userlib::caps::try_cap(name) {
            device_garbage(name, endpoint, device_id, &mut failures);
        }
    }
    println!("garbage-client: {} failures", failures);
    if userlib::caps::try_cap("system").is_some() {
        userlib::system_off(u64::from(failures))
    }
    idle()
}

/// Garbage to the mmu, memory-backing and PL011 servers, then a well-formed request to each.
fn vm_servers(failures: &mut u32) {
    for name in ["mmu", "memory", "pl011"] {
        let answer = garbage(userlib::cap(name));
        check(
            alloc_free_format(name),
            answer == Err(CallError::Rejected),
            failures,
        );
    }
    let counters = ipc::call::<mmu_api::Mmu>(
        &mut userlib::Kernel,
        userlib::cap("mmu"),
        &mmu_api::Request::Counters,
    );
    check(
        "mmu serves after garbage",
        matches!(counters, Ok(Ok(mmu_api::Reply::Counters(_)))),
        failures,
    );
    let frame = ipc::call::<memory_api::Memory>(
        &mut userlib::Kernel,
        userlib::cap("memory"),
        &memory_api::Request::FrameFor {
            region: 9,
            offset: 0,
            size: memory_api::FrameSize::Size4K,
        },
    );
    check(
        "memory answers a bad region with a typed error",
        frame
            == Ok(memory_api::Response::Error(
                memory_api::MemoryError::NoSuchRegion,
            )),
        failures,
    );
    let flags = ipc::call::<device_api::Mmio>(
        &mut userlib::Kernel,
        userlib::cap("pl011"),
        &device_api::Request::Read {
            offset: 0x18,
            width: 4,
        },
    );
    check(
        "pl011 serves after garbage",
        matches!(flags, Ok(device_api::Response::ValueLine { value, .. }) if value & 0x80 != 0),
        failures,
    );
}

/// Every malformed shape a peer can send a virtio device server, each of which must come back
/// as a typed answer (the harness's `LABEL_MALFORMED`, or the kernel format's bus error for a
/// forged fast-path access), then a well-formed read of the device's MagicValue and DeviceID
/// (virtio 1.2 §4.2.2), which must be the device's: `device_id` is 3 for vcon, 2 for vblk.
fn device_garbage(name: &str, endpoint: u64, device_id: u64, failures: &mut u32) {
    let rejected = |label: u64, length: u64, words: [u64; 4]| {
        let (info, words) = syscall::call(endpoint, MessageInfo::new(label, 0, length), words);
        ipc::interpret::<Response>(info, &words) == Err(CallError::Rejected)
    };
    // A label (postcard byte count) of 40 over words that are no postcard of any request.
    let ok = rejected(40, 4, [u64::MAX; 4]);
    check_device(name, "garbage words are rejected", ok, failures);
    // A label no message has (more bytes than the IPC buffer holds).
    let ok = rejected(9999, 0, [0; 4]);
    check_device(name, "a label past any message is rejected", ok, failures);
    // Variant 9 of a four-variant enum.
    let ok = rejected(1, 1, [9, 0, 0, 0]);
    check_device(name, "an unknown request variant is rejected", ok, failures);
    // `Read` with its offset and no width: two of its three bytes.
    let ok = rejected(2, 1, [0, 0, 0, 0]);
    check_device(name, "a request cut short is rejected", ok, failures);
    // A whole `Read { offset: 0, width: 4 }` by its label, but no word sent to carry it.
    let ok = rejected(3, 0, [0x04_00_00, 0, 0, 0]);
    check_device(
        name,
        "a label longer than the words sent is rejected",
        ok,
        failures,
    );
    // The kernel's fast-path label from a peer, with a width no access has: the harness answers
    // it in the kernel's format, as a bus error, and touches no register.
    let label = abi::FaultKind::Mmio as u64;
    let (info, _) = syscall::call(
        endpoint,
        MessageInfo::new(label, 0, 4),
        [0, 3, 0, FLAG_WRITE],
    );
    let ok = !info.is_error() && info.label() == REPLY_BUS_ERROR;
    check_device(
        name,
        "a forged fast-path access is a bus error",
        ok,
        failures,
    );
    let read = |offset: u32| {
        let request = Request::Read { offset, width: 4 };
        match ipc::call::<Mmio>(&mut userlib::Kernel, endpoint, &request) {
            Ok(Response::Value(value) | Response::ValueLine { value, .. }) => Some(value),
            _ => None,
        }
    };
    let (magic, id) = (read(register::MAGIC_VALUE), read(register::DEVICE_ID));
    if magic == Some(u64::from(MAGIC_VALUE)) && id == Some(device_id) {
        println!(
            "garbage-client: {name}: serves after garbage (MagicValue {MAGIC_VALUE:#x}, DeviceID {device_id}): ok"
        );
    } else {
        println!(
            "garbage-client: FAILED {name}: serves after garbage: MagicValue {magic:?}, DeviceID {id:?}"
        );
        *failures += 1;
    }
}

fn check_device(name: &str, what: &str, ok: bool, failures: &mut u32) {
    if ok {
        println!("garbage-client: {name}: {what}: ok");
    } else {
        println!("garbage-client: FAILED {name}: {what}");
        *failures += 1;
    }
}

/// Waits for ever on the notification `idle`, which nobody signals: the system goes on without
/// this client. Without `idle` it could only spin above the guest's priority, so a manifest
/// that gives neither `system` nor `idle` is a mismatch, which panics (the supervisor reports
/// it), as the server harness does for a missing endpoint.
fn idle() -> ! {
    let Some(idle) = userlib::caps::try_cap("idle") else {
        panic!("neither `system` nor `idle`: the manifest must give one");
    };
    println!("garbage-client: done; waiting while the guest runs");
    loop {
        syscall::wait(idle);
    }
}

/// Garbage to the physical driver, then `Capacity`: rejected, then served.
fn blk_garbage() -> ! {
    let mut failures = 0;
    let blk = userlib::cap("blk");
    check(
        "garbage to blk is rejected",
        garbage(blk) == Err(CallError::Rejected),
        &mut failures,
    );
    let capacity =
        ipc::call::<block_api::Block>(&mut userlib::Kernel, blk, &block_api::Request::Capacity);
    check(
        "blk serves after garbage",
        matches!(
            capacity,
            Ok(Ok(block_api::Reply::Capacity { sectors: 2048, .. }))
        ),
        &mut failures,
    );
    println!("garbage-client: {} failures", failures);
    userlib::system_off(u64::from(failures))
}

/// "garbage to <name> is rejected", without a heap.
fn alloc_free_format(name: &str) -> &'static str {
    match name {
        "mmu" => "garbage to mmu is rejected",
        "memory" => "garbage to memory is rejected",
        _ => "garbage to pl011 is rejected",
    }
}
