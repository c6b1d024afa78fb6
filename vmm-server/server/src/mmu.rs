//! The mmu-server adapter (placeholder until mmu-api lands).
use abi::CPtr;
use vmm_core::exit::{MmuAnswer, Stage2Answer, Stage2Fault};
use vmm_core::hypercall::MmuCall;

pub fn resolve(_mmu: CPtr, _fault: &Stage2Fault) -> Stage2Answer {
    Stage2Answer::NotMemory
}

pub fn carry_out(_mmu: CPtr, _call: &MmuCall) -> MmuAnswer {
    MmuAnswer::Failed
}
