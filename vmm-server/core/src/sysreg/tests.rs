//! The system-register table (each class, both directions, XZR), syndromes that do not decode,
//! and the route end to end through `plan(exit)`.

extern crate std;

use super::*;
use crate::exit::{ExitPlan, plan};
use abi::vm::{VmExit, VmExitKind, VmReply};
use proptest::prelude::*;
use std::vec::Vec;

// Reply bits, spelled out so that a change in `VmReply` shows here.
const ADVANCE: u64 = 1;
const WRITE_REG: u64 = 2;
const UNDEF: u64 = 16;

/// `(op0, op1, CRn, CRm, op2)`.
type Reg = (u8, u8, u8, u8, u8);

/// A trapped MSR (`read` false) or MRS of `S<op0>_<op1>_C<crn>_C<crm>_<op2>` with Xt = `rt`, as
/// hardware reports it: EC 0x18, IL = 1.
fn esr(reg: Reg, rt: u8, read: bool) -> u64 {
    let (op0, op1, crn, crm, op2) = reg;
    (0x18 << 26)
        | (1 << 25)
        | (u64::from(op0) << 20)
        | (u64::from(op2) << 17)
        | (u64::from(op1) << 14)
        | (u64::from(crn) << 10)
        | (u64::from(rt) << 5)
        | (u64::from(crm) << 1)
        | u64::from(read)
}

fn enc(reg: Reg) -> Encoding {
    Encoding::new(reg.0, reg.1, reg.2, reg.3, reg.4)
}

const MDSCR_EL1: Reg = (2, 0, 0, 2, 2);
const OSLAR_EL1: Reg = (2, 0, 1, 0, 4);
const OSLSR_EL1: Reg = (2, 0, 1, 1, 4);
const PMCR_EL0: Reg = (3, 3, 9, 12, 0);
const PMSWINC_EL0: Reg = (3, 3, 9, 12, 4);
const PMCEID0_EL0: Reg = (3, 3, 9, 12, 6);
const PMCCFILTR_EL0: Reg = (3, 3, 14, 15, 7);
const CNTP_CTL_EL0: Reg = (3, 3, 14, 2, 1);
const ICC_SGI1R: Reg = (3, 0, 12, 11, 5);
const ICC_ASGI1R: Reg = (3, 0, 12, 11, 6);
const ICC_SGI0R: Reg = (3, 0, 12, 11, 7);

use Direction::{ReadOnly as RO, ReadWrite as RW, WriteOnly as WO};
use RegisterClass::{Debug, PhysicalTimer, Pmu, SgiGeneration};

/// Registers of the table by name, with their class and directions.
const NAMED: &[(&str, Reg, RegisterClass, Direction)] = &[
    ("OSDTRRX_EL1", (2, 0, 0, 0, 2), Debug, RW),
    ("MDCCINT_EL1", (2, 0, 0, 2, 0), Debug, RW),
    ("MDSCR_EL1", MDSCR_EL1, Debug, RW),
    ("OSDTRTX_EL1", (2, 0, 0, 3, 2), Debug, RW),
    ("OSECCR_EL1", (2, 0, 0, 6, 2), Debug, RW),
    ("DBGBVR0_EL1", (2, 0, 0, 0, 4), Debug, RW),
    ("DBGBCR0_EL1", (2, 0, 0, 0, 5), Debug, RW),
    ("DBGWVR0_EL1", (2, 0, 0, 0, 6), Debug, RW),
    ("DBGWCR0_EL1", (2, 0, 0, 0, 7), Debug, RW),
    ("DBGBCR15_EL1", (2, 0, 0, 15, 5), Debug, RW),
    ("DBGWVR15_EL1", (2, 0, 0, 15, 6), Debug, RW),
    ("MDRAR_EL1", (2, 0, 1, 0, 0), Debug, RO),
    ("OSLAR_EL1", OSLAR_EL1, Debug, WO),
    ("OSLSR_EL1", OSLSR_EL1, Debug, RO),
    ("OSDLR_EL1", (2, 0, 1, 3, 4), Debug, RW),
    ("DBGPRCR_EL1", (2, 0, 1, 4, 4), Debug, RW),
    ("DBGCLAIMSET_EL1", (2, 0, 7, 8, 6), Debug, RW),
    ("DBGCLAIMCLR_EL1", (2, 0, 7, 9, 6), Debug, RW),
    ("DBGAUTHSTATUS_EL1", (2, 0, 7, 14, 6), Debug, RO),
    ("MDCCSR_EL0", (2, 3, 0, 1, 0), Debug, RO),
    ("DBGDTR_EL0", (2, 3, 0, 4, 0), Debug, RW),
    ("DBGDTRRX_EL0 / DBGDTRTX_EL0", (2, 3, 0, 5, 0), Debug, RW),
    ("PMCR_EL0", PMCR_EL0, Pmu, RW),
    ("PMCNTENSET_EL0", (3, 3, 9, 12, 1), Pmu, RW),
    ("PMCNTENCLR_EL0", (3, 3, 9, 12, 2), Pmu, RW),
    ("PMOVSCLR_EL0", (3, 3, 9, 12, 3), Pmu, RW),
    ("PMSWINC_EL0", PMSWINC_EL0, Pmu, WO),
    ("PMSELR_EL0", (3, 3, 9, 12, 5), Pmu, RW),
    ("PMCEID0_EL0", PMCEID0_EL0, Pmu, RO),
    ("PMCEID1_EL0", (3, 3, 9, 12, 7), Pmu, RO),
    ("PMCCNTR_EL0", (3, 3, 9, 13, 0), Pmu, RW),
    ("PMXEVTYPER_EL0", (3, 3, 9, 13, 1), Pmu, RW),
    ("PMXEVCNTR_EL0", (3, 3, 9, 13, 2), Pmu, RW),
    ("PMUSERENR_EL0", (3, 3, 9, 14, 0), Pmu, RW),
    ("PMOVSSET_EL0", (3, 3, 9, 14, 3), Pmu, RW),
    ("PMINTENSET_EL1", (3, 0, 9, 14, 1), Pmu, RW),
    ("PMINTENCLR_EL1", (3, 0, 9, 14, 2), Pmu, RW),
    ("PMMIR_EL1", (3, 0, 9, 14, 6), Pmu, RO),
    ("PMEVCNTR0_EL0", (3, 3, 14, 8, 0), Pmu, RW),
    ("PMEVCNTR30_EL0", (3, 3, 14, 11, 6), Pmu, RW),
    ("PMEVTYPER0_EL0", (3, 3, 14, 12, 0), Pmu, RW),
    ("PMEVTYPER30_EL0", (3, 3, 14, 15, 6), Pmu, RW),
    ("PMCCFILTR_EL0", PMCCFILTR_EL0, Pmu, RW),
    ("CNTP_TVAL_EL0", (3, 3, 14, 2, 0), PhysicalTimer, RW),
    ("CNTP_CTL_EL0", CNTP_CTL_EL0, PhysicalTimer, RW),
    ("CNTP_CVAL_EL0", (3, 3, 14, 2, 2), PhysicalTimer, RW),
    ("ICC_SGI1R_EL1", ICC_SGI1R, SgiGeneration, WO),
    ("ICC_ASGI1R_EL1", ICC_ASGI1R, SgiGeneration, WO),
    ("ICC_SGI0R_EL1", ICC_SGI0R, SgiGeneration, WO),
];

/// Registers and instructions a trap may report that the vmm does not emulate.
const UNKNOWN: &[(&str, Reg)] = &[
    ("SCTLR_EL1", (3, 0, 1, 0, 0)),
    ("ID_AA64DFR0_EL1", (3, 0, 0, 5, 0)),
    ("CNTPCT_EL0", (3, 3, 14, 0, 1)),
    ("CNTV_CTL_EL0", (3, 3, 14, 3, 1)),
    ("PMEVCNTR31_EL0 (unallocated)", (3, 3, 14, 11, 7)),
    ("PMCEID2 slot (unallocated)", (3, 3, 9, 14, 4)),
    ("TRCPRGCTLR_EL1 (trace)", (2, 1, 0, 1, 0)),
    ("DBGVCR32_EL2", (2, 4, 0, 7, 0)),
    ("DC CIVAC", (1, 3, 7, 14, 1)),
    ("op0 = 0", (0, 3, 4, 2, 3)),
    // The rest of the CPU interface goes to the hardware's virtual one, never to the vmm.
    ("ICC_DIR_EL1", (3, 0, 12, 11, 1)),
    ("ICC_RPR_EL1", (3, 0, 12, 11, 3)),
    ("ICC_IAR1_EL1", (3, 0, 12, 12, 0)),
    ("ICC_PMR_EL1", (3, 0, 4, 6, 0)),
    ("ICC_SGI1R_EL1 at EL2's op1", (3, 4, 12, 11, 5)),
];

#[test]
fn the_table_classifies_every_named_register() {
    for &(name, reg, class, direction) in NAMED {
        assert_eq!(classify(enc(reg)), Some((class, direction)), "{name}");
    }
    for &(name, reg) in UNKNOWN {
        assert_eq!(classify(enc(reg)), None, "{name}");
    }
}

#[test]
fn the_table_has_exactly_its_registers() {
    // Every encoding: 80 debug registers (64 of them breakpoints and watchpoints), 79 PMU
    // registers (31 event counters, 31 event types, PMCCFILTR), 3 timer registers, 3 SGI
    // registers. A widened pattern shows here.
    let mut counts = [0usize; 4];
    for op0 in 0..4u8 {
        for op1 in 0..8u8 {
            for crn in 0..16u8 {
                for crm in 0..16u8 {
                    for op2 in 0..8u8 {
                        if let Some((class, _)) = classify(Encoding::new(op0, op1, crn, crm, op2)) {
                            counts[class as usize] += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(counts, [80, 79, 3, 3]);
}

#[test]
fn hardware_syndromes_decode() {
    // `msr mdscr_el1, x1` and `mrs x0, pmcr_el0`, as ESR_EL2 reports them.
    assert_eq!(esr(MDSCR_EL1, 1, false), 0x6224_0024);
    assert_eq!(
        SysregAccess::decode(0x6224_0024),
        Ok(SysregAccess {
            encoding: enc(MDSCR_EL1),
            rt: 1,
            read: false
        })
    );
    assert_eq!(esr(PMCR_EL0, 0, true), 0x6230_E419);
    assert_eq!(
        SysregAccess::decode(0x6230_E419),
        Ok(SysregAccess {
            encoding: enc(PMCR_EL0),
            rt: 0,
            read: true
        })
    );
    // Every field at its maximum lands in its own place.
    let access = SysregAccess::decode(esr((3, 7, 15, 15, 7), 31, true)).unwrap();
    assert_eq!(
        (access.encoding, access.rt, access.read),
        (Encoding::new(3, 7, 15, 15, 7), 31, true)
    );
}

#[test]
fn reads_load_zero_and_writes_are_ignored_in_every_class() {
    for (reg, class) in [
        (MDSCR_EL1, Debug),
        (PMCCFILTR_EL0, Pmu),
        (CNTP_CTL_EL0, PhysicalTimer),
    ] {
        let read = resume(esr(reg, 7, true));
        assert_eq!(
            (read.reply.0, read.words, read.cause),
            (ADVANCE | WRITE_REG, [7, 0, 0, 0, 0, 0], Cause::RazWi(class)),
            "{reg:?}"
        );
        assert!(!read.injects());
        let x0 = resume(esr(reg, 0, true));
        assert_eq!((x0.reply.0, x0.words), (ADVANCE | WRITE_REG, [0; 6]));
        let write = resume(esr(reg, 7, false));
        assert_eq!(
            (write.reply.0, write.words, write.cause),
            (ADVANCE, [0; 6], Cause::RazWi(class)),
            "{reg:?}"
        );
    }
}

#[test]
fn a_read_into_xzr_only_steps() {
    for reg in [MDSCR_EL1, PMCR_EL0, CNTP_CTL_EL0] {
        let read = resume(esr(reg, 31, true));
        assert_eq!((read.reply.0, read.words), (ADVANCE, [0; 6]), "{reg:?}");
        // `msr <reg>, xzr` (the guest's `msr oslar_el1, xzr`) is a plain write.
        let write = resume(esr(reg, 31, false));
        assert_eq!((write.reply.0, write.words), (ADVANCE, [0; 6]), "{reg:?}");
    }
    assert_eq!(resume(esr(OSLAR_EL1, 31, false)).reply.0, ADVANCE);
}

#[test]
fn a_direction_the_register_does_not_have_is_undefined() {
    for (reg, read) in [
        (OSLAR_EL1, true),
        (PMSWINC_EL0, true),
        (OSLSR_EL1, false),
        (PMCEID0_EL0, false),
    ] {
        let resume = resume(esr(reg, 2, read));
        assert_eq!(
            (resume.reply.0, resume.words, resume.cause),
            (UNDEF, [0; 6], Cause::UnknownRegister(enc(reg))),
            "{reg:?} read {read}"
        );
    }
    // The other direction of each is emulated.
    assert_eq!(resume(esr(OSLSR_EL1, 2, true)).reply.0, ADVANCE | WRITE_REG);
    assert_eq!(resume(esr(PMSWINC_EL0, 2, false)).reply.0, ADVANCE);
}

#[test]
fn registers_outside_the_table_are_undefined() {
    for &(name, reg) in UNKNOWN {
        for read in [false, true] {
            let resume = resume(esr(reg, 3, read));
            assert_eq!(
                (resume.reply.0, resume.words, resume.cause),
                (UNDEF, [0; 6], Cause::UnknownRegister(enc(reg))),
                "{name}"
            );
        }
    }
}

#[test]
fn syndromes_that_do_not_decode_are_undefined() {
    let good = esr(MDSCR_EL1, 1, true);
    let bad: Vec<(u64, DecodeError)> = std::vec![
        // Another exception class with a debug register's ISS: HVC64, a data abort, EC 0.
        ((good & 0x03FF_FFFF) | (0x16 << 26), DecodeError::NotSysreg),
        ((good & 0x03FF_FFFF) | (0x24 << 26), DecodeError::NotSysreg),
        (good & 0x03FF_FFFF, DecodeError::NotSysreg),
        (0, DecodeError::NotSysreg),
        (u64::MAX, DecodeError::NotSysreg),
        // IL = 0.
        (good & !(1 << 25), DecodeError::Malformed),
        // ISS [24:22] and ISS2 [63:32] are RES0.
        (good | (1 << 22), DecodeError::Malformed),
        (good | (1 << 24), DecodeError::Malformed),
        (good | (1 << 32), DecodeError::Malformed),
        (good | (1 << 63), DecodeError::Malformed),
    ];
    for (esr, error) in bad {
        assert_eq!(SysregAccess::decode(esr), Err(error), "{esr:#x}");
        let resume = resume(esr);
        assert_eq!(
            (resume.reply.0, resume.words, resume.cause),
            (UNDEF, [0; 6], Cause::Unhandled),
            "{esr:#x}"
        );
    }
}

fn sysreg_exit(esr: u64, value: u64) -> VmExit {
    VmExit {
        kind: VmExitKind::SystemRegister,
        pc: 0x4008_1000,
        esr,
        words: [value, 0, 0, 0, 0, 0],
    }
}

fn reply(plan: ExitPlan) -> Resume {
    match plan {
        ExitPlan::Reply(resume) => resume,
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn a_system_register_exit_is_answered_at_once() {
    // `mrs x3, mdscr_el1`: x3 = 0, PC + 4; label and words as the server sends them.
    let read = reply(plan(&sysreg_exit(esr(MDSCR_EL1, 3, true), 0)));
    assert_eq!(
        read.reply,
        VmReply::ADVANCE_PC.with(VmReply::WRITE_REGISTER)
    );
    assert_eq!(
        (read.info().label(), read.info().length()),
        (ADVANCE | WRITE_REG, 6)
    );
    assert_eq!(
        (read.registers(), read.buffer_words()),
        ([3, 0, 0, 0], [0, 0])
    );
    // `msr mdscr_el1, x1` with SS | MDE | KDE: ignored, whatever the kernel read from x1.
    let write = reply(plan(&sysreg_exit(
        esr(MDSCR_EL1, 1, false),
        (1 << 15) | (1 << 13) | 1,
    )));
    assert_eq!(
        (write.reply.0, write.words, write.cause),
        (ADVANCE, [0; 6], Cause::RazWi(Debug))
    );
    // `msr cntp_ctl_el0, x2` = 1 (enabled, unmasked) and `msr pmcr_el0, xzr`.
    for (esr, class) in [
        (esr(CNTP_CTL_EL0, 2, false), PhysicalTimer),
        (esr(PMCR_EL0, 31, false), Pmu),
    ] {
        let write = reply(plan(&sysreg_exit(esr, 1)));
        assert_eq!((write.reply.0, write.cause), (ADVANCE, Cause::RazWi(class)));
    }
    // SCTLR_EL1 is not the vmm's (it is not trapped); should it ever be, it is undefined.
    let sctlr = reply(plan(&sysreg_exit(esr((3, 0, 1, 0, 0), 0, false), 0)));
    assert_eq!((sctlr.reply.0, sctlr.injects()), (UNDEF, true));
    // A SystemRegister exit whose syndrome is a data abort's.
    let confused = reply(plan(&sysreg_exit(0x9300_0046, 0)));
    assert_eq!(
        (confused.reply.0, confused.cause),
        (UNDEF, Cause::Unhandled)
    );
}

proptest! {
    /// Any syndrome gets one coherent reply: undefined without a step, or a step with at most
    /// a write of 0 to a general-purpose register (never xzr).
    #[test]
    fn any_syndrome_gets_a_coherent_reply(
        esr in prop_oneof![
            any::<u64>(),
            any::<u64>().prop_map(|e| (e & 0x01FF_FFFF) | (0x18 << 26) | (1 << 25)),
            any::<u64>().prop_map(|e| (e & 0x003F_FFFF) | (0x18 << 26) | (1 << 25)),
        ],
        value in any::<u64>(),
    ) {
        let resume = reply(plan(&sysreg_exit(esr, value)));
        if resume.injects() {
            prop_assert_eq!((resume.reply.0, resume.words), (UNDEF, [0; 6]));
        } else {
            prop_assert!(resume.reply == VmReply::ADVANCE_PC
                || resume.reply == VmReply::ADVANCE_PC.with(VmReply::WRITE_REGISTER));
            prop_assert!(matches!(resume.cause, Cause::RazWi(_)));
            prop_assert_eq!(&resume.words[1..], &[0u64; 5][..]);
            if resume.reply.contains(VmReply::WRITE_REGISTER) {
                prop_assert!(resume.words[0] < 31 && esr & 1 == 1);
            }
        }
    }
}

#[test]
fn a_write_to_icc_sgi1r_sends_the_sgi_and_steps_over() {
    // Linux's gic_send_sgi of SGI 1 to itself (Aff 0.0.0, TargetList bit 0), from x5.
    let value = (1 << 24) | 1;
    let sent = action(esr(ICC_SGI1R, 5, false), value);
    assert_eq!(
        sent,
        Action::SendSgi {
            value,
            then: Resume::advance(Cause::Emulated)
        }
    );
    let Action::SendSgi { then, .. } = sent else {
        unreachable!()
    };
    assert_eq!((then.reply.0, then.words), (ADVANCE, [0; 6]));
    // `msr icc_sgi1r_el1, xzr` sends SGI 0 to no one, whatever the exit's word says.
    assert!(matches!(
        action(esr(ICC_SGI1R, 31, false), u64::MAX),
        Action::SendSgi { value: 0, .. }
    ));
    // A write-only register: reading it is undefined.
    assert_eq!(
        action(esr(ICC_SGI1R, 5, true), 0),
        Action::Reply(Resume::undefined(Cause::UnknownRegister(enc(ICC_SGI1R))))
    );
}

#[test]
fn group0_sgi_registers_ignore_writes_and_refuse_reads() {
    for reg in [ICC_ASGI1R, ICC_SGI0R] {
        assert_eq!(
            action(esr(reg, 2, false), (1 << 24) | 1),
            Action::Reply(Resume::advance(Cause::RazWi(SgiGeneration))),
            "{reg:?}"
        );
        assert_eq!(
            action(esr(reg, 2, true), 0),
            Action::Reply(Resume::undefined(Cause::UnknownRegister(enc(reg)))),
            "{reg:?}"
        );
    }
}

#[test]
fn every_other_register_keeps_its_reply() {
    for &(name, reg, _, _) in NAMED {
        for read in [false, true] {
            let esr = esr(reg, 4, read);
            if reg == ICC_SGI1R && !read {
                continue;
            }
            assert_eq!(action(esr, 7), Action::Reply(resume(esr)), "{name}");
        }
    }
    for &(name, reg) in UNKNOWN {
        let esr = esr(reg, 4, false);
        assert_eq!(action(esr, 7), Action::Reply(resume(esr)), "{name}");
    }
    // `resume` alone, without a vGIC behind it, steps over an SGI1R write.
    assert_eq!(
        resume(esr(ICC_SGI1R, 5, false)),
        Resume::advance(Cause::RazWi(SgiGeneration))
    );
}

proptest! {
    /// `action` is `resume` except for a write to ICC_SGI1R_EL1, which carries Xt's value.
    #[test]
    fn action_differs_from_resume_only_for_sgi1r_writes(
        esr in prop_oneof![
            any::<u64>(),
            any::<u64>().prop_map(|e| (e & 0x01FF_FFFF) | (0x18 << 26) | (1 << 25)),
            (5u8..8, 0u8..32, any::<bool>()).prop_map(|(op2, rt, read)| {
                esr((3, 0, 12, 11, op2), rt, read)
            }),
        ],
        value in any::<u64>(),
    ) {
        let sgi1r_write = matches!(
            SysregAccess::decode(esr),
            Ok(SysregAccess { encoding, read: false, .. }) if encoding == enc(ICC_SGI1R)
        );
        match action(esr, value) {
            Action::Reply(reply) => {
                prop_assert!(!sgi1r_write);
                prop_assert_eq!(reply, resume(esr));
            }
            Action::SendSgi { value: sent, then } => {
                prop_assert!(sgi1r_write);
                let xzr = (esr >> 5) & 0x1F == 31;
                prop_assert_eq!(sent, if xzr { 0 } else { value });
                prop_assert_eq!(then, Resume::advance(Cause::Emulated));
            }
        }
    }
}
