//! Translation between the vmm's plans and the mmu-server's protocol (`mmu_api`): the requests
//! for a [`Stage2Fault`] and an [`MmuCall`], and what the replies (or a failed call) mean for
//! the guest.
//!
//! Policy, after KVM's `user_mem_abort`: a fault the backing could not populate in time
//! (`BackingRetriesExhausted`) or a call cut short by an mmu-server restart resumes the guest
//! unchanged, so it faults again and the request is made afresh (KVM returns to the guest on
//! `-EAGAIN`); any other error injects an abort. `ipc::call` has already retried idempotent
//! requests after a restart (`mmu_api::Mmu::is_idempotent`), so `Restarted` here means the
//! server kept restarting. For the vendor hypercalls, a refusal about the range (`NoSlot`,
//! `BadRange`) is the guest's mistake and answers INVALID_PARAMETER; an enable past the VM's
//! dirty-log windows (`DirtyLogWindowsExhausted`) answers NO_WINDOW, so the guest can tell "disable
//! one first" from a bad range; anything else is INTERNAL_FAILURE.

use crate::exit::{MmuAnswer, Stage2Answer, Stage2Fault};
use crate::hypercall::MmuCall;
use crate::syndrome::FaultStatus;
use ipc::CallError;
use mmu_api::{MmuError, Reply, Request};

/// The request that resolves `fault`.
pub const fn fault_request(fault: &Stage2Fault) -> Request {
    Request::HandleStage2Fault {
        ipa: fault.ipa,
        write: fault.write,
        exec: fault.instruction,
        permission: matches!(fault.status, FaultStatus::Permission { .. }),
    }
}

/// What the mmu-server's answer to [`fault_request`] means.
pub const fn fault_answer(answer: &Result<mmu_api::Response, CallError>) -> Stage2Answer {
    match answer {
        Ok(Ok(Reply::Mapped { .. })) => Stage2Answer::Mapped,
        Ok(Ok(Reply::NotMemory)) => Stage2Answer::NotMemory,
        Ok(Err(MmuError::BackingRetriesExhausted { .. })) | Err(CallError::Restarted { .. }) => {
            Stage2Answer::Retry
        }
        // Another error, a reply meant for another request, or the server is unreachable.
        _ => Stage2Answer::Failed,
    }
}

/// The memory slot of HV_RAM_ALIAS (slot 0 is the VM's RAM).
pub const ALIAS_SLOT: u8 = 1;

/// The VM's RAM as the memory-backing server numbers it: its region and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmRam {
    /// The memory-backing server's region (the VM's index).
    pub region: u16,
    /// Bytes.
    pub size: u64,
}

/// The request that carries out `call` for a VM whose RAM is `ram`; `None` when the call
/// names a page outside that RAM (answered INVALID_PARAMETER).
pub const fn call_request(call: &MmuCall, ram: VmRam) -> Option<Request> {
    Some(match *call {
        MmuCall::DirtyLogEnable { ipa, len } => Request::EnableDirtyLog { ipa, len },
        MmuCall::DirtyLogGetAndClear { ipa, len } => Request::GetAndClearDirtyLog { ipa, len },
        MmuCall::DirtyLogDisable { ipa, len } => Request::DisableDirtyLog { ipa, len },
        MmuCall::Stage2Faults => Request::Counters,
        MmuCall::RamAlias { ipa, offset } => {
            if offset >= ram.size {
                return None;
            }
            Request::SetSlot {
                slot: ALIAS_SLOT,
                spec: mmu_api::SlotSpec {
                    ipa,
                    len: crate::hypercall::PAGE_SIZE,
                    region: ram.region,
                    offset,
                    flags: mmu_api::SlotFlags {
                        read_only: false,
                        allow_blocks: false,
                    },
                },
            }
        }
        MmuCall::RamAliasRemove => Request::DeleteSlot { slot: ALIAS_SLOT },
    })
}

/// What the mmu-server's answer to [`call_request`] means. A reply of the wrong kind for the
/// call is caught by `exit::after_mmu`, which answers INTERNAL_FAILURE.
pub const fn call_answer(answer: &Result<mmu_api::Response, CallError>) -> MmuAnswer {
    match answer {
        Ok(Ok(Reply::Done)) => MmuAnswer::Done,
        Ok(Ok(Reply::DirtyBitmap { words })) => MmuAnswer::Bitmap(*words),
        Ok(Ok(Reply::Counters(counters))) => MmuAnswer::Counters {
            pages: counters.pages_4k,
            blocks: counters.blocks_2m,
            permission: counters.permission,
        },
        Ok(Err(MmuError::NoSlot | MmuError::BadRange)) => MmuAnswer::Refused,
        Ok(Err(MmuError::DirtyLogWindowsExhausted { .. })) => MmuAnswer::NoWindow,
        _ => MmuAnswer::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{MmuPlan, after_mmu};
    use crate::hypercall::Conduit;
    use mmu_api::{FaultCounters, MappedSize};

    fn fault(status: FaultStatus, write: bool, instruction: bool) -> Stage2Fault {
        Stage2Fault {
            ipa: 0x4020_0010,
            write,
            instruction,
            status,
        }
    }

    #[test]
    fn fault_requests_carry_the_access_and_the_permission_class() {
        assert_eq!(
            fault_request(&fault(FaultStatus::Translation { level: 3 }, false, false)),
            Request::HandleStage2Fault {
                ipa: 0x4020_0010,
                write: false,
                exec: false,
                permission: false
            }
        );
        assert_eq!(
            fault_request(&fault(FaultStatus::Permission { level: 3 }, true, false)),
            Request::HandleStage2Fault {
                ipa: 0x4020_0010,
                write: true,
                exec: false,
                permission: true
            }
        );
        assert_eq!(
            fault_request(&fault(FaultStatus::AccessFlag { level: 2 }, false, true)),
            Request::HandleStage2Fault {
                ipa: 0x4020_0010,
                write: false,
                exec: true,
                permission: false
            }
        );
    }

    #[test]
    fn fault_answers() {
        let mapped = Ok(Ok(Reply::Mapped {
            size: MappedSize::Size2M,
        }));
        assert_eq!(fault_answer(&mapped), Stage2Answer::Mapped);
        assert_eq!(
            fault_answer(&Ok(Ok(Reply::NotMemory))),
            Stage2Answer::NotMemory
        );
        let exhausted = Ok(Err(MmuError::BackingRetriesExhausted { attempts: 8 }));
        assert_eq!(fault_answer(&exhausted), Stage2Answer::Retry);
        assert_eq!(
            fault_answer(&Err(CallError::Restarted { generation: 3 })),
            Stage2Answer::Retry
        );
        for failed in [
            Ok(Err(MmuError::OutOfMemory)),
            Ok(Err(MmuError::MappingRefused)),
            Ok(Err(MmuError::BackingFailed)),
            Ok(Ok(Reply::Done)),
            Err(CallError::ServerDown { generation: 3 }),
            Err(CallError::MalformedReply),
        ] {
            assert_eq!(fault_answer(&failed), Stage2Answer::Failed, "{failed:?}");
        }
    }

    const RAM: VmRam = VmRam {
        region: 2,
        size: 0x400_0000,
    };

    #[test]
    fn call_requests() {
        assert_eq!(
            call_request(
                &MmuCall::DirtyLogEnable {
                    ipa: 0x4020_0000,
                    len: 1 << 20
                },
                RAM
            ),
            Some(Request::EnableDirtyLog {
                ipa: 0x4020_0000,
                len: 1 << 20
            })
        );
        assert_eq!(
            call_request(
                &MmuCall::DirtyLogGetAndClear {
                    ipa: 0x4020_0000,
                    len: 1 << 20
                },
                RAM
            ),
            Some(Request::GetAndClearDirtyLog {
                ipa: 0x4020_0000,
                len: 1 << 20
            })
        );
        assert_eq!(
            call_request(&MmuCall::Stage2Faults, RAM),
            Some(Request::Counters)
        );
        assert_eq!(
            call_request(
                &MmuCall::DirtyLogDisable {
                    ipa: 0x4030_0000,
                    len: 0x1000
                },
                RAM
            ),
            Some(Request::DisableDirtyLog {
                ipa: 0x4030_0000,
                len: 0x1000
            })
        );
    }

    /// Disable answers `x0 = 0` when done; an enable past the VM's windows answers NO_WINDOW
    /// (not INVALID_PARAMETER, not INTERNAL_FAILURE); a range refusal INVALID_PARAMETER.
    #[test]
    fn dirty_log_windows_answers() {
        let plan = |call| MmuPlan {
            call,
            conduit: Conduit::Hvc,
        };
        let enable = plan(MmuCall::DirtyLogEnable {
            ipa: 0x4030_0000,
            len: 0x1000,
        });
        let disable = plan(MmuCall::DirtyLogDisable {
            ipa: 0x4030_0000,
            len: 0x1000,
        });
        let exhausted = Ok(Err(MmuError::DirtyLogWindowsExhausted { limit: 4 }));
        assert_eq!(call_answer(&exhausted), MmuAnswer::NoWindow);
        let refused = after_mmu(&enable, call_answer(&exhausted));
        assert_eq!(refused.words[2] as i64, -4);
        assert_eq!(refused.words[2], crate::hypercall::NO_WINDOW);
        assert_eq!(refused.words[3..], [0, 0, 0]);
        let done = after_mmu(&disable, call_answer(&Ok(Ok(Reply::Done))));
        assert_eq!(done.words[2..], [0, 0, 0, 0]);
        assert_eq!(
            done.reply,
            after_mmu(&enable, MmuAnswer::Done).reply,
            "answered as an enable is"
        );
        let bad = after_mmu(&disable, call_answer(&Ok(Err(MmuError::BadRange))));
        assert_eq!(bad.words[2], crate::hypercall::INVALID_PARAMETER);
        // NO_WINDOW is an enable's answer only; for any other call it is a confused server.
        for call in [
            disable.call,
            MmuCall::Stage2Faults,
            MmuCall::RamAliasRemove,
            MmuCall::DirtyLogGetAndClear {
                ipa: 0x4030_0000,
                len: 0x1000,
            },
        ] {
            assert_eq!(
                after_mmu(&plan(call), MmuAnswer::NoWindow).words[2],
                crate::hypercall::INTERNAL_FAILURE,
                "{call:?}"
            );
        }
        // A disable that was answered with a bitmap: INTERNAL_FAILURE too.
        assert_eq!(
            after_mmu(&disable, MmuAnswer::Bitmap([1, 0, 0, 0])).words[2],
            crate::hypercall::INTERNAL_FAILURE
        );
    }

    #[test]
    fn a_ram_alias_is_one_page_of_the_vms_own_ram_in_slot_1() {
        let alias = MmuCall::RamAlias {
            ipa: 0x0A00_0000,
            offset: 0x3F_F000,
        };
        assert_eq!(
            call_request(&alias, RAM),
            Some(Request::SetSlot {
                slot: ALIAS_SLOT,
                spec: mmu_api::SlotSpec {
                    ipa: 0x0A00_0000,
                    len: 4096,
                    region: 2,
                    offset: 0x3F_F000,
                    flags: mmu_api::SlotFlags {
                        read_only: false,
                        allow_blocks: false
                    },
                },
            })
        );
        let past_the_end = MmuCall::RamAlias {
            ipa: 0x0A00_0000,
            offset: RAM.size,
        };
        assert_eq!(call_request(&past_the_end, RAM), None);
        assert_eq!(
            call_request(&MmuCall::RamAliasRemove, RAM),
            Some(Request::DeleteSlot { slot: ALIAS_SLOT })
        );
        let plan = MmuPlan {
            call: alias,
            conduit: Conduit::Hvc,
        };
        assert_eq!(after_mmu(&plan, MmuAnswer::Done).words[2], 0);
        assert_eq!(
            after_mmu(&plan, MmuAnswer::Refused).words[2],
            crate::hypercall::INVALID_PARAMETER
        );
    }

    #[test]
    fn call_answers_become_guest_results() {
        let plan = |call| MmuPlan {
            call,
            conduit: Conduit::Hvc,
        };
        let counters = Ok(Ok(Reply::Counters(FaultCounters {
            pages_4k: 12,
            blocks_2m: 3,
            permission: 4,
        })));
        assert_eq!(
            call_answer(&counters),
            MmuAnswer::Counters {
                pages: 12,
                blocks: 3,
                permission: 4
            }
        );
        let resume = after_mmu(&plan(MmuCall::Stage2Faults), call_answer(&counters));
        assert_eq!(resume.words, [0, 0, 0, 12, 3, 4]);
        let bitmap = Ok(Ok(Reply::DirtyBitmap {
            words: [1, 2, 3, 4],
        }));
        assert_eq!(call_answer(&bitmap), MmuAnswer::Bitmap([1, 2, 3, 4]));
        assert_eq!(call_answer(&Ok(Ok(Reply::Done))), MmuAnswer::Done);
        assert_eq!(call_answer(&Ok(Err(MmuError::NoSlot))), MmuAnswer::Refused);
        assert_eq!(
            call_answer(&Ok(Err(MmuError::BadRange))),
            MmuAnswer::Refused
        );
        assert_eq!(
            call_answer(&Ok(Err(MmuError::OutOfMemory))),
            MmuAnswer::Failed
        );
        assert_eq!(
            call_answer(&Err(CallError::Restarted { generation: 1 })),
            MmuAnswer::Failed
        );
        // The wrong kind of reply: after_mmu answers INTERNAL_FAILURE.
        let wrong = after_mmu(
            &plan(MmuCall::DirtyLogEnable { ipa: 0, len: 4096 }),
            call_answer(&counters),
        );
        assert_eq!(wrong.words[2] as i64, -6);
    }
}
