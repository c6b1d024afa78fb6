//! The routing decision end to end, with exact reply bits and words: WFx, system registers,
//! every hypercall path over both conduits, stage-2 faults to the mmu-server, MMIO round trips
//! through the device table, holes and the accesses that cannot be emulated.

extern crate std;

use super::*;
use crate::devices::DeviceTable;
use crate::layout::PL011;
use abi::vm::hypercall as id;
use device_api::{Request, Response};
use proptest::prelude::*;

const UART_EP: u64 = 9;
const HVC0: u64 = 0x5A00_0000;
const SMC0: u64 = 0x5E00_0000;
// Reply bits, spelled out so that a change in `VmReply` shows here.
const ADVANCE: u64 = 1;
const WRITE_REG: u64 = 2;
const RESULTS: u64 = 4;
const ABORT: u64 = 8;
const UNDEF: u64 = 16;

fn devices() -> DeviceTable {
    DeviceTable::standard(|name| (name == "pl011").then_some(UART_EP))
}

fn hypercall(esr: u64, x: [u64; 6]) -> VmExit {
    VmExit {
        kind: VmExitKind::Hypercall,
        pc: 0x4008_0100,
        esr,
        words: x,
    }
}

/// A lower-EL data abort with ISV: SAS, SSE, SRT, SF, WnR and the fault status code.
fn dabt_esr(sas: u64, sse: bool, srt: u64, sf: bool, wnr: bool, fsc: u64) -> u64 {
    (0x24 << 26)
        | (1 << 25)
        | (1 << 24)
        | (sas << 22)
        | (u64::from(sse) << 21)
        | (srt << 16)
        | (u64::from(sf) << 15)
        | (u64::from(wnr) << 6)
        | fsc
}

fn abort_exit(esr: u64, ipa: u64, value: u64) -> VmExit {
    VmExit {
        kind: VmExitKind::Stage2Abort,
        pc: 0x4008_0200,
        esr,
        words: [ipa, ipa, value, 0, 0, 0],
    }
}

fn reply(plan: ExitPlan) -> Resume {
    match plan {
        ExitPlan::Reply(resume) => resume,
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// Runs an MMIO exit through the mmu's NotMemory answer and returns the device plan.
fn mmio_plan(exit: &VmExit) -> MmioPlan {
    assert!(matches!(plan(exit), ExitPlan::ResolveStage2(_)));
    match after_stage2(exit, Stage2Answer::NotMemory, &devices()) {
        ExitPlan::Mmio(plan) => plan,
        other => panic!("expected MMIO, got {other:?}"),
    }
}

#[test]
fn wfi_steps_over_the_instruction_and_waits_for_an_interrupt() {
    let exit = VmExit {
        kind: VmExitKind::WaitForInterrupt,
        pc: 0x4008_0000,
        esr: 0x0600_0000,
        words: [0; 6],
    };
    let resume = reply(plan(&exit));
    assert_eq!(
        (resume.reply.0, resume.words, resume.cause),
        (ADVANCE | VmReply::WAIT_FOR_INTERRUPT.0, [0; 6], Cause::Idle)
    );
}

#[test]
fn wfe_is_only_stepped_over_never_a_wait() {
    // ISS.TI = 1: WFE. Waiting for an interrupt there would hang a guest whose timer is off.
    let exit = VmExit {
        kind: VmExitKind::WaitForInterrupt,
        pc: 0x4008_0000,
        esr: 0x0600_0001,
        words: [0; 6],
    };
    let resume = reply(plan(&exit));
    assert_eq!(
        (resume.reply.0, resume.words, resume.cause),
        (ADVANCE, [0; 6], Cause::Idle)
    );
}

#[test]
fn unknown_system_registers_and_other_exits_inject_undefined() {
    // EC 0x18 with ISS 0 names no register (op0 = 0); sysreg/tests.rs has the emulated ones.
    for kind in [VmExitKind::SystemRegister, VmExitKind::Other] {
        let exit = VmExit {
            kind,
            pc: 0x4008_0000,
            esr: 0x6200_0000,
            words: [1; 6],
        };
        let resume = reply(plan(&exit));
        assert_eq!((resume.reply.0, resume.words), (UNDEF, [0; 6]), "{kind:?}");
        assert!(resume.injects());
    }
}

#[test]
fn psci_version_over_hvc_and_smc() {
    let hvc = reply(plan(&hypercall(HVC0, [id::PSCI_VERSION, 0, 0, 0, 0, 0])));
    assert_eq!(
        (hvc.reply.0, hvc.words),
        (RESULTS, [0, 0, 0x0001_0001, 0, 0, 0])
    );
    let smc = reply(plan(&hypercall(SMC0, [id::PSCI_VERSION, 0, 0, 0, 0, 0])));
    assert_eq!(
        (smc.reply.0, smc.words),
        (RESULTS | ADVANCE, [0, 0, 0x0001_0001, 0, 0, 0])
    );
}

#[test]
fn system_off_powers_off_with_the_verdict_over_either_conduit() {
    for esr in [HVC0, SMC0] {
        assert_eq!(
            plan(&hypercall(esr, [id::PSCI_SYSTEM_OFF, 0, 0, 0, 0, 0])),
            ExitPlan::PowerOff { verdict: 0 }
        );
        assert_eq!(
            plan(&hypercall(esr, [id::PSCI_SYSTEM_OFF, 6, 0, 0, 0, 0])),
            ExitPlan::PowerOff { verdict: 6 }
        );
    }
}

#[test]
fn unknown_ids_answer_not_supported() {
    for function in [0x8000_0002, 0xC600_0099, 0x1234] {
        let hvc = reply(plan(&hypercall(HVC0, [function, 1, 2, 3, 4, 5])));
        assert_eq!(
            (hvc.reply.0, hvc.words),
            (RESULTS, [0, 0, u64::MAX, 0, 0, 0]),
            "{function:#x}"
        );
        let smc = reply(plan(&hypercall(SMC0, [function, 1, 2, 3, 4, 5])));
        assert_eq!(
            smc.reply.0,
            RESULTS | ADVANCE,
            "an unsupported smc is still stepped over"
        );
    }
}

#[test]
fn a_hypercall_exit_with_another_class_is_undefined() {
    let resume = reply(plan(&hypercall(
        0x93C0_8007,
        [id::PSCI_VERSION, 0, 0, 0, 0, 0],
    )));
    assert_eq!((resume.reply.0, resume.cause), (UNDEF, Cause::Unhandled));
}

#[test]
fn vendor_calls_plan_an_mmu_call_and_shape_its_answers() {
    let enable = hypercall(
        HVC0,
        [id::HV_DIRTY_LOG_ENABLE, 0x4020_0000, 0x10_0000, 0, 0, 0],
    );
    let ExitPlan::Mmu(call) = plan(&enable) else {
        panic!("expected an mmu call")
    };
    assert_eq!(
        call,
        MmuPlan {
            call: MmuCall::DirtyLogEnable {
                ipa: 0x4020_0000,
                len: 0x10_0000
            },
            conduit: Conduit::Hvc
        }
    );
    let done = after_mmu(&call, MmuAnswer::Done);
    assert_eq!((done.reply.0, done.words), (RESULTS, [0; 6]));

    let get = hypercall(
        SMC0,
        [
            id::HV_DIRTY_LOG_GET_AND_CLEAR,
            0x4020_0000,
            0x10_0000,
            0,
            0,
            0,
        ],
    );
    let ExitPlan::Mmu(call) = plan(&get) else {
        panic!("expected an mmu call")
    };
    assert_eq!(call.conduit, Conduit::Smc);
    let bitmap = after_mmu(&call, MmuAnswer::Bitmap([0x9, 0x1, 0, 1 << 63]));
    // x0 = 0, x1..x3 = words 0..2 through SET_RESULTS, x4 = word 3 through WRITE_REGISTER.
    assert_eq!(bitmap.reply.0, RESULTS | WRITE_REG | ADVANCE);
    assert_eq!(bitmap.words, [4, 1 << 63, 0, 0x9, 0x1, 0]);

    let disable = hypercall(
        SMC0,
        [id::HV_DIRTY_LOG_DISABLE, 0x4020_0000, 0x10_0000, 0, 0, 0],
    );
    let ExitPlan::Mmu(call) = plan(&disable) else {
        panic!("expected an mmu call")
    };
    assert_eq!(
        call,
        MmuPlan {
            call: MmuCall::DirtyLogDisable {
                ipa: 0x4020_0000,
                len: 0x10_0000
            },
            conduit: Conduit::Smc
        }
    );
    let done = after_mmu(&call, MmuAnswer::Done);
    assert_eq!((done.reply.0, done.words), (RESULTS | ADVANCE, [0; 6]));

    let faults = hypercall(HVC0, [id::HV_STAGE2_FAULTS, 0, 0, 0, 0, 0]);
    let ExitPlan::Mmu(call) = plan(&faults) else {
        panic!("expected an mmu call")
    };
    let counters = after_mmu(
        &call,
        MmuAnswer::Counters {
            pages: 300,
            blocks: 8,
            permission: 5,
        },
    );
    assert_eq!(
        (counters.reply.0, counters.words),
        (RESULTS, [0, 0, 0, 300, 8, 5])
    );
}

#[test]
fn vendor_call_failures_are_error_codes_not_faults() {
    let call = MmuPlan {
        call: MmuCall::DirtyLogEnable {
            ipa: 0x4020_0000,
            len: 0x1000,
        },
        conduit: Conduit::Hvc,
    };
    let refused = after_mmu(&call, MmuAnswer::Refused);
    assert_eq!((refused.reply.0, refused.words[2] as i64), (RESULTS, -3));
    let no_window = after_mmu(&call, MmuAnswer::NoWindow);
    assert_eq!(
        (no_window.reply.0, no_window.words[2] as i64),
        (RESULTS, -4)
    );
    let failed = after_mmu(&call, MmuAnswer::Failed);
    assert_eq!((failed.reply.0, failed.words[2] as i64), (RESULTS, -6));
    let confused = after_mmu(&call, MmuAnswer::Bitmap([1; 4]));
    assert_eq!(
        (confused.reply.0, confused.words[2] as i64),
        (RESULTS, -6),
        "an answer for another call"
    );
    let bad_range = reply(plan(&hypercall(
        HVC0,
        [id::HV_DIRTY_LOG_ENABLE, 0x4020_0001, 0x1000, 0, 0, 0],
    )));
    assert_eq!(bad_range.words[2] as i64, -3);
    let bad_disable = reply(plan(&hypercall(
        HVC0,
        [id::HV_DIRTY_LOG_DISABLE, 0x4020_0000, 0x10_1000, 0, 0, 0],
    )));
    assert_eq!(bad_disable.words[2] as i64, -3, "more than 1 MiB");
}

#[test]
fn stage2_faults_go_to_the_mmu_server_first() {
    let read = abort_exit(
        dabt_esr(2, false, 1, false, false, 0b00_0111),
        0x4000_1234,
        0,
    );
    assert_eq!(
        plan(&read),
        ExitPlan::ResolveStage2(Stage2Fault {
            ipa: 0x4000_1234,
            write: false,
            instruction: false,
            status: FaultStatus::Translation { level: 3 }
        })
    );
    // A dirty-logging permission fault on a store (stp: no ISV, still the mmu's).
    let store = abort_exit(
        dabt_esr(3, false, 1, true, true, 0b00_1111) & !(1 << 24),
        0x4020_0008,
        0,
    );
    let ExitPlan::ResolveStage2(fault) = plan(&store) else {
        panic!("expected the mmu")
    };
    assert!(fault.write && fault.status == FaultStatus::Permission { level: 3 });
    // An instruction fetch.
    let fetch = abort_exit((0x20 << 26) | (1 << 25) | 0b00_0110, 0x4008_0000, 0);
    let ExitPlan::ResolveStage2(fault) = plan(&fetch) else {
        panic!("expected the mmu")
    };
    assert!(fault.instruction && !fault.write);
}

#[test]
fn unresolvable_fault_statuses_inject_an_abort_without_asking() {
    for fsc in [0b00_0000, 0b01_0000, 0b11_0000] {
        let exit = abort_exit(dabt_esr(2, false, 1, false, false, fsc), 0x80_0000_0000, 0);
        let resume = reply(plan(&exit));
        assert_eq!(
            (resume.reply.0, resume.cause),
            (ABORT, Cause::Unresolvable(FaultStatus::decode(fsc)))
        );
    }
}

#[test]
fn mapped_and_retry_resume_as_is_and_mmu_failure_aborts() {
    let exit = abort_exit(
        dabt_esr(2, false, 1, false, false, 0b00_0111),
        0x4000_0000,
        0,
    );
    for answer in [Stage2Answer::Mapped, Stage2Answer::Retry] {
        let resume = reply(after_stage2(&exit, answer, &devices()));
        assert_eq!((resume.reply.0, resume.words), (0, [0; 6]), "{answer:?}");
    }
    let failed = reply(after_stage2(&exit, Stage2Answer::Failed, &devices()));
    assert_eq!((failed.reply.0, failed.cause), (ABORT, Cause::MmuFailed));
}

#[test]
fn an_mmio_read_round_trip_writes_the_register_and_steps() {
    // ldr w5, [x0, #0x18]: the PL011 flag register.
    let exit = abort_exit(
        dabt_esr(2, false, 5, false, false, 0b00_0111),
        PL011.base + 0x18,
        0,
    );
    let mmio = mmio_plan(&exit);
    assert_eq!(
        (mmio.device.endpoint, mmio.device.name, mmio.offset),
        (UART_EP, "pl011", 0x18)
    );
    assert_eq!(
        mmio.request(),
        Request::Read {
            offset: 0x18,
            width: 4
        }
    );
    let resume = after_mmio(&mmio, Ok(Response::Value(0x90)));
    assert_eq!(
        (resume.reply.0, resume.words),
        (ADVANCE | WRITE_REG, [5, 0x90, 0, 0, 0, 0])
    );
    assert_eq!(resume.info().label(), ADVANCE | WRITE_REG);
    assert_eq!(resume.info().length(), 6);
    assert_eq!(
        (resume.registers(), resume.buffer_words()),
        ([5, 0x90, 0, 0], [0, 0])
    );
}

#[test]
fn an_mmio_write_round_trip_sends_the_masked_value_and_steps() {
    // strb w3, [x0]: one character to the data register; the kernel read all of x3.
    let exit = abort_exit(
        dabt_esr(0, false, 3, false, true, 0b00_0111),
        PL011.base,
        0xFFFF_FF41,
    );
    let mmio = mmio_plan(&exit);
    assert_eq!(
        mmio.request(),
        Request::Write {
            offset: 0,
            width: 1,
            value: 0x41
        }
    );
    let resume = after_mmio(&mmio, Ok(Response::Done));
    assert_eq!(
        (resume.reply.0, resume.words, resume.cause),
        (ADVANCE, [0; 6], Cause::Emulated)
    );
}

#[test]
fn mmio_loads_are_shaped_per_sse_and_sf() {
    // ldrsb w7 / ldrsh x7 / ldrb w7 of a device value with the top bit of the width set.
    for (sas, sse, sf, raw, expected) in [
        (0, true, false, 0xF0, 0xFFFF_FFF0),
        (1, true, true, 0x8000, 0xFFFF_FFFF_FFFF_8000),
        (0, false, false, 0xF0, 0xF0),
        (2, false, true, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF),
    ] {
        let exit = abort_exit(
            dabt_esr(sas, sse, 7, sf, false, 0b00_0111),
            PL011.base + 0x20,
            0,
        );
        let resume = after_mmio(&mmio_plan(&exit), Ok(Response::Value(raw)));
        assert_eq!(
            resume.words[..2],
            [7, expected],
            "SAS {sas} SSE {sse} SF {sf}"
        );
    }
}

#[test]
fn an_mmio_load_into_xzr_only_steps() {
    let exit = abort_exit(
        dabt_esr(2, false, 31, false, false, 0b00_0111),
        PL011.base,
        0,
    );
    let resume = after_mmio(&mmio_plan(&exit), Ok(Response::Value(0x1234)));
    assert_eq!((resume.reply.0, resume.words), (ADVANCE, [0; 6]));
}

#[test]
fn device_errors_inject_an_abort_and_leave_the_pc() {
    let read = mmio_plan(&abort_exit(
        dabt_esr(2, false, 1, false, false, 0b00_0111),
        PL011.base + 0x30,
        0,
    ));
    let write = mmio_plan(&abort_exit(
        dabt_esr(2, false, 1, false, true, 0b00_0111),
        PL011.base + 0x30,
        1,
    ));
    for (plan, answer, cause) in [
        (read, Ok(Response::BusError), Cause::DeviceBusError),
        (write, Ok(Response::BusError), Cause::DeviceBusError),
        (read, Ok(Response::Done), Cause::DeviceConfused),
        (write, Ok(Response::Value(1)), Cause::DeviceConfused),
        (
            write,
            Err(ipc::CallError::ServerDown { generation: 2 }),
            Cause::DeviceFailed,
        ),
    ] {
        let resume = after_mmio(&plan, answer);
        assert_eq!((resume.reply.0, resume.cause), (ABORT, cause), "{answer:?}");
    }
    // A device server that restarted under the call: the guest executes the access again.
    let resume = after_mmio(&read, Err(ipc::CallError::Restarted { generation: 2 }));
    assert_eq!(
        (resume.reply, resume.cause),
        (VmReply::RESUME, Cause::DeviceRestarted)
    );
}

#[test]
fn the_hole_and_straddling_accesses_get_an_abort() {
    for (ipa, sas) in [
        (0x2000_0000, 2),
        (PL011.base + 0x1000, 0),
        (PL011.base + 0xFFC, 3),
    ] {
        let exit = abort_exit(dabt_esr(sas, false, 1, sas == 3, false, 0b00_0111), ipa, 0);
        let resume = reply(after_stage2(&exit, Stage2Answer::NotMemory, &devices()));
        assert_eq!(
            (resume.reply.0, resume.words, resume.cause),
            (ABORT, [0; 6], Cause::Hole),
            "{ipa:#x}"
        );
    }
    // Without a pl011 capability the UART window is a hole too.
    let exit = abort_exit(
        dabt_esr(2, false, 1, false, false, 0b00_0111),
        PL011.base,
        0,
    );
    let resume = reply(after_stage2(
        &exit,
        Stage2Answer::NotMemory,
        &DeviceTable::new(),
    ));
    assert_eq!(resume.cause, Cause::Hole);
}

#[test]
fn accesses_that_cannot_be_emulated() {
    let not_memory = |exit: &VmExit| reply(after_stage2(exit, Stage2Answer::NotMemory, &devices()));
    // ldp x0, x1, [uart]: no ISV.
    let pair = abort_exit(
        dabt_esr(3, false, 0, true, false, 0b00_0111) & !(1 << 24),
        PL011.base,
        0,
    );
    assert_eq!(
        (not_memory(&pair).reply.0, not_memory(&pair).cause),
        (ABORT, Cause::NoSyndrome)
    );
    // FAR not valid: the offset in the page is unknown.
    let fnv = abort_exit(
        dabt_esr(2, false, 0, false, false, 0b00_0111) | (1 << 10),
        PL011.base,
        0,
    );
    assert_eq!(not_memory(&fnv).cause, Cause::NoSyndrome);
    // Executing from the UART.
    let fetch = abort_exit((0x20 << 26) | (1 << 25) | 0b00_0111, PL011.base, 0);
    assert_eq!(
        (not_memory(&fetch).reply.0, not_memory(&fetch).cause),
        (ABORT, Cause::InstructionFetch)
    );
    // A stage-1 table walk into the hole.
    let walk = abort_exit(
        dabt_esr(0, false, 0, false, false, 0b00_0111) & !(1 << 24) | (1 << 7),
        0x2000_0000,
        0,
    );
    assert_eq!(not_memory(&walk).cause, Cause::TableWalk);
    // dc civac on the UART: stepped over, as KVM does.
    let cm = abort_exit(
        dabt_esr(0, false, 0, false, true, 0b00_0111) & !(1 << 24) | (1 << 8),
        PL011.base,
        0,
    );
    assert_eq!(
        (not_memory(&cm).reply.0, not_memory(&cm).cause),
        (ADVANCE, Cause::CacheMaintenance)
    );
}

proptest! {
    /// Nothing the guest controls panics the planner, and every path ends in a reply that never
    /// both injects and steps, or in a power-off.
    #[test]
    fn any_exit_gets_a_coherent_answer(
        kind in 1u64..=7,
        esr in prop_oneof![
            any::<u64>(),
            // Lower-EL data and instruction aborts, so the MMIO path is reached often.
            any::<u64>().prop_map(|e| (e & 0x03FF_FFFF) | (0x24 << 26)),
            any::<u64>().prop_map(|e| (e & 0x03FF_FFFF) | (0x24 << 26) | (1 << 24)),
            any::<u64>().prop_map(|e| (e & 0x03FF_FFFF) | (0x20 << 26)),
            any::<u64>().prop_map(|e| (e & 0x03FF_FFFF) | (0x16 << 26)),
            // Trapped MSR/MRS, IL = 1, so the RAZ/WI path is reached often.
            any::<u64>().prop_map(|e| (e & 0x01FF_FFFF) | (0x18 << 26) | (1 << 25)),
        ],
        ipa in prop_oneof![
            any::<u64>(),
            PL011.base..PL011.base + 0x1000,
            Just(0x2000_0000u64),
            crate::layout::VGIC_DISTRIBUTOR.base..crate::layout::VGIC_REDISTRIBUTOR.base + 0x2_0000,
        ],
        x in any::<[u64; 6]>(),
        raw in any::<u64>(),
    ) {
        let Some(kind) = VmExitKind::from_raw(kind) else { return Ok(()) };
        let exit = VmExit { kind, pc: 0x4008_0000, esr, words: [ipa, ipa, x[2], x[3], x[4], x[5]] };
        let exit = if kind == VmExitKind::Hypercall { VmExit { words: x, ..exit } } else { exit };
        let coherent = |resume: Resume| {
            let steps = resume.reply.contains(VmReply::ADVANCE_PC);
            !(resume.injects() && steps)
        };
        match plan(&exit) {
            ExitPlan::Reply(resume) => {
                prop_assert!(coherent(resume));
                if resume.reply.contains(VmReply::WRITE_REGISTER) && kind != VmExitKind::Hypercall {
                    prop_assert!(resume.words[0] < 31);
                }
            }
            ExitPlan::PowerOff { .. }
            | ExitPlan::Reset
            | ExitPlan::BootCount(_)
            | ExitPlan::ResetLoop(_) => {
                prop_assert_eq!(kind, VmExitKind::Hypercall)
            }
            ExitPlan::Mmu(call) => {
                for answer in [MmuAnswer::Done, MmuAnswer::Bitmap([raw; 4]), MmuAnswer::Refused, MmuAnswer::NoWindow, MmuAnswer::Failed] {
                    let resume = after_mmu(&call, answer);
                    prop_assert!(resume.reply.contains(VmReply::SET_RESULTS) && coherent(resume));
                }
            }
            ExitPlan::Mmio(_) => prop_assert!(false, "MMIO before the mmu-server was asked"),
            ExitPlan::Vgic(access) => {
                prop_assert_eq!(kind, VmExitKind::Stage2Abort);
                prop_assert!(crate::layout::in_vgic(access.ipa));
                for answer in [Some(raw), None] {
                    let resume = after_vgic(&access, answer);
                    prop_assert!(coherent(resume));
                    if resume.reply.contains(VmReply::WRITE_REGISTER) {
                        prop_assert!(resume.words[0] < 31);
                        prop_assert!(access.sixty_four || resume.words[1] <= 0xFFFF_FFFF);
                    }
                }
            }
            ExitPlan::Maintenance { .. } => prop_assert_eq!(kind, VmExitKind::VgicMaintenance),
            ExitPlan::SendSgi { then, .. } => {
                prop_assert_eq!(kind, VmExitKind::SystemRegister);
                prop_assert!(coherent(then));
            }
            ExitPlan::ResolveStage2(_) => {
                for answer in [Stage2Answer::Mapped, Stage2Answer::NotMemory, Stage2Answer::Retry, Stage2Answer::Failed] {
                    match after_stage2(&exit, answer, &devices()) {
                        ExitPlan::Reply(resume) => prop_assert!(coherent(resume)),
                        ExitPlan::Mmio(mmio) => {
                            prop_assert!(PL011.contains(mmio.access.ipa, u64::from(mmio.access.width)));
                            for answer in [Ok(Response::Value(raw)), Ok(Response::Done), Ok(Response::BusError)] {
                                let resume = after_mmio(&mmio, answer);
                                prop_assert!(coherent(resume));
                                if resume.reply.contains(VmReply::WRITE_REGISTER) {
                                    prop_assert!(resume.words[0] < 31);
                                    prop_assert!(mmio.access.sixty_four || resume.words[1] <= 0xFFFF_FFFF);
                                }
                            }
                        }
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
            }
        }
    }
}

#[test]
fn system_reset_and_the_boot_count_are_planned_for_the_server() {
    assert_eq!(
        plan(&hypercall(HVC0, [id::PSCI_SYSTEM_RESET, 0, 0, 0, 0, 0])),
        ExitPlan::Reset
    );
    let ExitPlan::BootCount(conduit) = plan(&hypercall(SMC0, [id::HV_BOOT_COUNT, 0, 0, 0, 0, 0]))
    else {
        panic!("HV_BOOT_COUNT is answered by the server");
    };
    let resume = boot_count_reply(conduit, 2);
    assert_eq!(
        (resume.reply.0, resume.words),
        (RESULTS | ADVANCE, [0, 0, 0, 2, 0, 0])
    );
    let ExitPlan::ResetLoop(conduit) = plan(&hypercall(HVC0, [id::HV_RESET_LOOP, 0, 0, 0, 0, 0]))
    else {
        panic!("HV_RESET_LOOP is answered by the server");
    };
    let resume = reset_loop_reply(conduit, 8);
    assert_eq!(
        (resume.reply.0, resume.words),
        (RESULTS, [0, 0, 0, 8, 0, 0])
    );
}

#[test]
fn an_serror_taken_in_the_guest_is_answered_with_a_virtual_serror() {
    let exit = VmExit {
        kind: VmExitKind::SError,
        pc: 0x4008_0000,
        esr: 0xBE00_0000,
        words: [0; 6],
    };
    let resume = reply(plan(&exit));
    assert_eq!(
        (resume.reply.0, resume.words, resume.cause),
        (VmReply::INJECT_SERROR.0, [0; 6], Cause::SError)
    );
    // Asynchronous: not one of the synchronous injections that must leave the PC alone.
    assert!(!resume.injects());
}
