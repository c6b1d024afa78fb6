//! Calls to the mmu-server (`mmu_api::Mmu` on the `mmu` endpoint). The translation of plans to
//! requests and of replies to answers is `vmm_core::mmu`, host-tested; this file only makes the
//! call and puts the failures a human should see on the console.

use abi::CPtr;
use userlib::println;
use vmm_core::exit::{MmuAnswer, Stage2Answer, Stage2Fault};
use vmm_core::hypercall::MmuCall;
use vmm_core::ratelimit::RateLimit;

/// The records a guest can cause here, rate-limited (`vmm_core::ratelimit`): each kind is
/// logged for its first events, then for the 2^k-th, with the count.
#[derive(Default)]
pub struct Log {
    failed: RateLimit,
    refused: RateLimit,
    unresolved: RateLimit,
}

fn call(
    mmu: CPtr,
    request: &mmu_api::Request,
    log: &mut Log,
) -> Result<mmu_api::Response, ipc::CallError> {
    let answer = ipc::call::<mmu_api::Mmu>(&mut userlib::Kernel, mmu, request);
    match &answer {
        Err(error) => {
            if let Some(n) = log.failed.note() {
                println!("vmm: mmu-server call failed: {error} (failure {n})");
            }
        }
        Ok(Err(error)) => {
            if let Some(n) = log.refused.note() {
                defmt::info!(
                    "mmu-server refused: {=str} (refusal {=u64})",
                    display(error),
                    n
                );
            }
        }
        Ok(Ok(_)) => {}
    }
    answer
}

/// Resolves a stage-2 fault.
pub fn resolve(mmu: CPtr, fault: &Stage2Fault, log: &mut Log) -> Stage2Answer {
    let answer = call(mmu, &vmm_core::mmu::fault_request(fault), log);
    let resolved = vmm_core::mmu::fault_answer(&answer);
    if let (Stage2Answer::Failed, Ok(Err(error))) = (resolved, &answer)
        && let Some(n) = log.unresolved.note()
    {
        println!(
            "vmm: stage-2 fault at {:#x} not resolved: {error} (unresolved fault {n})",
            fault.ipa
        );
    }
    resolved
}

/// Carries out a vendor hypercall of the VM this vmm serves.
pub fn carry_out(mmu: CPtr, request: &MmuCall, log: &mut Log) -> MmuAnswer {
    let Some(request) = vm_ram().and_then(|ram| vmm_core::mmu::call_request(request, ram)) else {
        return MmuAnswer::Refused;
    };
    vmm_core::mmu::call_answer(&call(mmu, &request, log))
}

/// The RAM of the (one) VM this vmm serves, from its boot info.
fn vm_ram() -> Option<vmm_core::mmu::VmRam> {
    let mut ram = None;
    bootdesc::bootinfo::for_each_vm(userlib::caps::bootinfo(), |vm| {
        ram = Some(vmm_core::mmu::VmRam {
            region: vm.index,
            size: vm.ram_size,
        });
        false
    });
    ram
}

/// A short name for an error in the defmt log (the Display text goes to the console).
fn display(error: &mmu_api::MmuError) -> &'static str {
    match error {
        mmu_api::MmuError::NoSlot => "no slot",
        mmu_api::MmuError::BadRange => "bad range",
        mmu_api::MmuError::BackingRetriesExhausted { .. } => "backing retries exhausted",
        mmu_api::MmuError::BackingFailed => "backing failed",
        mmu_api::MmuError::OutOfMemory => "out of memory",
        mmu_api::MmuError::MappingRefused => "mapping refused",
        mmu_api::MmuError::DirtyLogWindowsExhausted { .. } => "dirty-log windows exhausted",
    }
}
