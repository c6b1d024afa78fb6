//! Sends each server of a VM a message that is not its protocol, then a well-formed one: every
//! server must answer the garbage with a typed rejection and go on serving (issue: "a malformed
//! message to each server gets a typed error back and the server keeps serving"). Run as
//! `blk-garbage` it does the same to the physical virtio-blk driver on its `blk` endpoint
//! (tests/manifests/malformed-to-blk.toml).
#![no_std]
#![no_main]

use abi::MessageInfo;
use ipc::CallError;
use userlib::{println, syscall};

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
    for name in ["mmu", "memory", "pl011"] {
        let answer = garbage(userlib::cap(name));
        check(
            alloc_free_format(name),
            answer == Err(CallError::Rejected),
            &mut failures,
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
        &mut failures,
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
        &mut failures,
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
        &mut failures,
    );
    println!("garbage-client: {} failures", failures);
    userlib::system_off(u64::from(failures))
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
