//! The vmm's exit path end to end, as `vmm-server` runs it: exit words as the kernel delivers
//! them (`VmExit::from_words`), the syndrome decoders (`syndrome`, `sysreg`), SMCCC dispatch
//! (`hypercall::dispatch`), the plan (`exit::plan`), and every follow-up step with answers the
//! other servers might give (decoded from words, so restarts, kernel errors and replies of the
//! wrong kind come up too), the vGIC model for its windows, and the counters. Every exit ends
//! in exactly one reply or a power-off or reset, never a panic, and the reply keeps the
//! invariants of docs/GUEST-ABI.md: an injected exception never steps the PC, a load never
//! writes x31, hypercall results always step an `smc`.
#![no_main]

use abi::MessageInfo;
use abi::message::MAX_MESSAGE_WORDS;
use abi::vm::{VM_EXIT_WORDS, VmExit, VmReply};
use arbitrary::{Arbitrary, Unstructured};
use ipc::CallError;
use vmm_core::exit::{self, ExitPlan, Resume};
use vmm_core::hypercall::{self, Conduit};
use vmm_core::layout;
use vmm_core::mmu::{self, VmRam};
use vmm_core::syndrome::{self, Abort, FaultStatus};
use vmm_core::sysreg::{self, SysregAccess};
use vmm_core::vgic::{GicWindow, Vgic};
use vmm_core::{DeviceTable, ExitCounters};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut vmm = Vmm::new();
    // Unstructured answers zeros once the data is used up: stop there.
    while !u.is_empty() {
        if vmm.exit(&mut u).is_err() {
            return;
        }
    }
});

/// The vmm's state that outlives one exit.
struct Vmm {
    devices: DeviceTable,
    vgic: Vgic,
    counters: ExitCounters,
    handled: u64,
}

impl Vmm {
    fn new() -> Self {
        let mut devices = DeviceTable::standard(|_| Some(5));
        for n in 0..2 {
            let (window, intid) = layout::virtio_transport(n).expect("two transports exist");
            devices
                .insert_virtio("virtio", (window.base, window.size), intid, 6 + n as u64)
                .expect("a standard transport is accepted");
        }
        Self {
            devices,
            vgic: Vgic::new(),
            counters: ExitCounters::default(),
            handled: 0,
        }
    }

    /// One exit from the kernel, carried through to its reply.
    fn exit(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        let mut words = [0u64; VM_EXIT_WORDS];
        words[0] = u64::from(u.int_in_range(0u8..=8)?);
        for word in &mut words[1..] {
            *word = interesting(u)?;
        }
        let Some(exit) = VmExit::from_words(words) else {
            assert!(!(1..=7).contains(&words[0]), "kind {} refused", words[0]);
            return Ok(());
        };
        assert_eq!(exit.to_words(), words);
        decoders(&exit);
        let mut step = exit::plan(&exit);
        let mut stage2 = None;
        // At most three steps: stage 2, then MMIO, then the reply.
        for _ in 0..3 {
            step = match step {
                ExitPlan::Reply(resume) => {
                    check_reply(&exit, &resume);
                    self.counters.count(&exit, stage2);
                    self.handled += 1;
                    assert_eq!(self.counters.total(), self.handled);
                    return Ok(());
                }
                ExitPlan::ResolveStage2(fault) => {
                    let request = mmu::fault_request(&fault);
                    assert!(matches!(
                        request,
                        mmu_api::Request::HandleStage2Fault { ipa, .. } if ipa == fault.ipa
                    ));
                    let answer = mmu::fault_answer(&answer::<mmu_api::Response>(u)?);
                    stage2 = Some(answer);
                    exit::after_stage2(&exit, answer, &self.devices)
                }
                ExitPlan::Mmio(plan) => {
                    let route = self.devices.lookup(plan.access.ipa, plan.access.width);
                    assert_eq!(
                        route.map(|r| (r.device, r.offset)),
                        Some((plan.device, plan.offset))
                    );
                    let _ = plan.request();
                    let answer = answer::<device_api::Response>(u)?;
                    ExitPlan::Reply(exit::after_mmio(&plan, answer))
                }
                ExitPlan::Mmu(plan) => {
                    let ram = VmRam {
                        region: 0,
                        size: 256 << 20,
                    };
                    let answer = match mmu::call_request(&plan.call, ram) {
                        Some(_) => mmu::call_answer(&answer::<mmu_api::Response>(u)?),
                        None => vmm_core::MmuAnswer::Refused,
                    };
                    ExitPlan::Reply(exit::after_mmu(&plan, answer))
                }
                ExitPlan::Vgic(access) => {
                    let answer =
                        GicWindow::of(access.ipa, access.width).and_then(|(window, offset)| {
                            if access.write {
                                self.vgic
                                    .write(window, offset, access.width, access.value)
                                    .map(|_| 0)
                            } else {
                                self.vgic.read(window, offset, access.width)
                            }
                        });
                    ExitPlan::Reply(exit::after_vgic(&access, answer))
                }
                ExitPlan::SendSgi { value, then } => {
                    let _ = self.vgic.send_sgi(value);
                    ExitPlan::Reply(then)
                }
                ExitPlan::Maintenance { completed, .. } => {
                    for intid in completed {
                        if let Ok(intid) = u32::try_from(intid) {
                            let _ = self.vgic.completed(intid);
                        }
                    }
                    let mut due = heapless::Vec::new();
                    self.vgic.next_injections(&mut due);
                    ExitPlan::Reply(Resume::retry(exit::Cause::Interrupt))
                }
                ExitPlan::BootCount(conduit) => ExitPlan::Reply(exit::boot_count_reply(conduit, 3)),
                ExitPlan::ResetLoop(conduit) => ExitPlan::Reply(exit::reset_loop_reply(conduit, 2)),
                ExitPlan::PowerOff { .. } => {
                    assert_eq!(exit.kind, abi::vm::VmExitKind::Hypercall);
                    return Ok(());
                }
                ExitPlan::Reset => {
                    assert_eq!(exit.kind, abi::vm::VmExitKind::Hypercall);
                    self.vgic.reset();
                    return Ok(());
                }
            };
        }
        panic!("exit {exit:x?} took more than three steps");
    }
}

/// Mostly values that mean something to the decoders (syndromes of the exception classes the
/// vmm sees, IPAs in its windows, SMCCC function ids), sometimes anything.
fn interesting(u: &mut Unstructured<'_>) -> arbitrary::Result<u64> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => {
            let class = *u.choose(&[0x01u64, 0x16, 0x17, 0x18, 0x20, 0x24, 0x2F])?;
            (class << 26) | (1 << 25) | u64::from(u32::arbitrary(u)? & 0x01FF_FFFF)
        }
        1 => layout::VGIC_DISTRIBUTOR.base + u64::from(u16::arbitrary(u)?),
        2 => layout::VGIC_REDISTRIBUTOR.base + u64::from(u32::arbitrary(u)? & 0x1_FFFF),
        3 => layout::PL011.base + u64::from(u16::arbitrary(u)? & 0xFFF),
        4 => {
            0x8400_0000 | u64::from(u8::arbitrary(u)?) | (u64::from(u8::arbitrary(u)? & 0x7F) << 24)
        }
        5 => 0x0A00_0000 + u64::from(u16::arbitrary(u)?),
        _ => u64::arbitrary(u)?,
    })
}

/// Every decoder the exit path uses, on the raw syndrome and words: none may panic, and their
/// answers agree with each other.
fn decoders(exit: &VmExit) {
    let esr = exit.esr;
    let abort = Abort::decode(esr);
    let _ = FaultStatus::decode(esr).is_resolvable();
    match syndrome::decode_mmio(esr, exit.words[0], exit.words[2]) {
        Ok(access) => {
            let abort = abort.expect("an MMIO access is an abort");
            assert!(!abort.instruction);
            assert!(matches!(access.width, 1 | 2 | 4 | 8));
            assert!(access.register <= 31);
            assert_eq!(access.value, syndrome::mask(access.value, access.width));
            let raw = exit.words[1];
            let loaded = access.load_value(raw);
            if !access.sixty_four {
                assert_eq!(loaded >> 32, 0, "a W register load clears the upper half");
            }
        }
        Err(syndrome::SyndromeError::NotDataAbort) => {
            assert!(abort.is_none_or(|abort| abort.instruction));
        }
        Err(syndrome::SyndromeError::NoSyndrome) => {}
    }
    if let Ok(access) = SysregAccess::decode(esr) {
        let _ = sysreg::classify(access.encoding);
    }
    let _ = sysreg::action(esr, exit.words[0]);
    let _ = sysreg::resume(esr);
    let conduit = Conduit::from_esr(esr);
    let action = hypercall::dispatch(esr, exit.words);
    if let Some(conduit) = conduit {
        let _ = conduit.advances_pc();
    }
    if esr & 0xFFFF != 0 {
        assert_eq!(
            action,
            hypercall::HypercallAction::Return([hypercall::NOT_SUPPORTED, 0, 0, 0]),
            "a non-zero immediate is no SMCCC call"
        );
    }
}

/// What another server answered, as the vmm decodes it from the reply's info and words: a
/// response, or a restart, a kernel error, a rejection or a reply that does not decode.
fn answer<R: serde::de::DeserializeOwned>(
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<Result<R, CallError>> {
    let info = match u.int_in_range(0u8..=3)? {
        0 => MessageInfo::error(u64::from(u8::arbitrary(u)? % 16), 3),
        1 => MessageInfo::new(ipc::LABEL_MALFORMED, 0, 0),
        2 => MessageInfo::from_raw(u64::arbitrary(u)?),
        _ => {
            let length = u.int_in_range(0u8..=24)?;
            MessageInfo::new(u64::from(length), 0, u64::from(length).div_ceil(8))
        }
    };
    let mut words = [0u64; MAX_MESSAGE_WORDS];
    for word in words.iter_mut().take(4) {
        *word = u64::arbitrary(u)?;
    }
    Ok(ipc::interpret(info, &words))
}

/// The invariants of every reply the vmm sends.
fn check_reply(exit: &VmExit, resume: &Resume) {
    let reply = resume.reply;
    if resume.injects() {
        assert!(
            !reply.contains(VmReply::ADVANCE_PC),
            "an injected exception steps the PC: {resume:x?} for {exit:x?}"
        );
        assert!(!reply.contains(VmReply::SET_RESULTS), "{resume:x?}");
    }
    if reply.contains(VmReply::WRITE_REGISTER) {
        assert!(
            resume.words[0] < 31,
            "a load into x{}: {resume:x?}",
            resume.words[0]
        );
    }
    if reply.contains(VmReply::SET_RESULTS)
        && let Some(conduit) = Conduit::from_esr(exit.esr)
    {
        assert_eq!(
            reply.contains(VmReply::ADVANCE_PC),
            conduit.advances_pc(),
            "{resume:x?}"
        );
    }
    assert_eq!(resume.info().length(), exit::REPLY_WORDS);
}
