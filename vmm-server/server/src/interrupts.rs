//! The VM's interrupts: the vGIC model (`vmm_core::vgic`, the distributor and redistributor
//! registers) and the kernel's VCPU invocations that carry its decisions into the list
//! registers (`VcpuInjectIrq`) and the kernel's virtual-timer path (`VcpuSetVtimer`).
//!
//! After anything that can change what is due (a GIC register write, a device line, an SGI, a
//! maintenance exit) the model is asked for the interrupts to hand over, and each goes to the
//! kernel; one the kernel has no free list register for goes back to the model and is handed
//! over again at the next maintenance exit (the kernel asks for underflow maintenance then).
//!
//! The model is the VM's interrupt state, so it outlives the vmm: the loop writes it to the
//! state page whenever it changed (`take_changed`, before the reply that lets the guest see
//! the change), and a restarted vmm takes it over (`take_over`, docs/VMM.md "Restart").

use abi::CPtr;
use abi::vm::NO_INTID;
use userlib::{println, syscall};
use vmm_core::ratelimit::RateLimit;
use vmm_core::syndrome::MmioAccess;
use vmm_core::vgic::{GicWindow, Injection, Vgic};

/// The model and the VCPU capability.
pub struct Interrupts {
    vgic: Vgic,
    /// The level each device line had at its last answer (bit per INTID below 256): the model
    /// is consulted only when a line changes, not on every access.
    levels: [u64; 4],
    /// `vcpu:<vm>`; without it nothing is injected (the guest sees a GIC that never interrupts).
    vcpu: Option<CPtr>,
    /// Injections the kernel refused for another reason than a full set of list registers. A
    /// guest causes them (one that pends and enables INTID 25, the kernel's maintenance
    /// interrupt, has it offered and refused again at every GIC write), so they are
    /// rate-limited like every guest-triggered record.
    refused: RateLimit,
    /// The model or the levels changed since the state page was last written.
    changed: bool,
}

impl Interrupts {
    /// Out of reset.
    pub fn new(vcpu: Option<CPtr>) -> Self {
        Self {
            vgic: Vgic::new(),
            levels: [0; 4],
            vcpu,
            refused: RateLimit::new(),
            changed: true,
        }
    }

    /// A restarted vmm takes over: the model and the levels from the state page, then what
    /// the model believes is in the list registers put right from the kernel's answer
    /// (`Vgic::reconcile`), then whatever is due handed over. Returns whether the kernel
    /// answered; without it the model is kept as saved.
    pub fn take_over(&mut self, vgic: Vgic, levels: [u64; 4]) -> bool {
        self.vgic = vgic;
        self.levels = levels;
        self.changed = true;
        let Some(vcpu) = self.vcpu else {
            return false;
        };
        let (info, held) = syscall::invoke(vcpu, abi::InvocationLabel::VcpuListRegisters, [0; 4]);
        if info.is_error() {
            println!(
                "vmm: reading the list registers failed (kernel error {})",
                info.label()
            );
            return false;
        }
        self.vgic.reconcile(&held);
        self.push_vtimer();
        self.flush();
        true
    }

    /// Whether the model or the levels changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        core::mem::take(&mut self.changed)
    }

    /// What the state page keeps.
    pub fn state(&self) -> (&Vgic, [u64; 4]) {
        (&self.vgic, self.levels)
    }

    /// SYSTEM_RESET: the model out of reset (the kernel reset the VCPU's list registers and
    /// its virtual-timer configuration with the VCPU).
    pub fn reset(&mut self) {
        self.vgic.reset();
        self.levels = [0; 4];
        self.changed = true;
    }

    /// A guest access to a GIC window: `Some(value)` for a read, `Some(0)` for an accepted
    /// write, `None` for a bus error.
    pub fn access(&mut self, access: &MmioAccess) -> Option<u64> {
        let (window, offset) = GicWindow::of(access.ipa, access.width)?;
        if !access.write {
            return self.vgic.read(window, offset, access.width);
        }
        let outcome = self
            .vgic
            .write(window, offset, access.width, access.value)?;
        self.changed = true;
        if outcome.vtimer_changed {
            self.push_vtimer();
        }
        self.flush();
        Some(0)
    }

    /// A device answered with its line level.
    pub fn set_line(&mut self, intid: u32, level: bool) {
        let (word, bit) = ((intid / 64) as usize, 1u64 << (intid % 64));
        if let Some(levels) = self.levels.get_mut(word) {
            if (*levels & bit != 0) == level {
                return;
            }
            if level {
                *levels |= bit;
            } else {
                *levels &= !bit;
            }
            self.changed = true;
        }
        if self.vgic.set_line(intid, level).is_ok() {
            self.flush();
        }
    }

    /// A device's line fell and rose again since we last knew it (high now): the model sees
    /// both, so an edge-triggered INTID becomes pending again.
    pub fn pulse(&mut self, intid: u32) {
        self.set_line(intid, false);
        self.set_line(intid, true);
    }

    /// A trapped ICC_SGI1R_EL1 write.
    pub fn send_sgi(&mut self, value: u64) {
        if self.vgic.send_sgi(value) {
            self.changed = true;
            self.flush();
        }
    }

    /// A maintenance exit: these INTIDs were completed.
    pub fn maintenance(&mut self, completed: [u64; 4]) {
        self.changed = true;
        for intid in completed {
            if intid != NO_INTID
                && let Ok(intid) = u32::try_from(intid)
            {
                // An INTID the model did not hand out (one injected before a reset of the
                // model) is nothing to complete.
                let _ = self.vgic.completed(intid);
            }
        }
        self.flush();
    }

    /// Hands every interrupt that is due to the kernel.
    fn flush(&mut self) {
        let Some(vcpu) = self.vcpu else {
            return;
        };
        let mut due = heapless::Vec::<Injection, 4>::new();
        self.vgic.next_injections(&mut due);
        // `next_injections` also forgets edge interrupts handed out before.
        self.changed = true;
        for injection in due {
            let (info, _) = syscall::invoke(
                vcpu,
                abi::InvocationLabel::VcpuInjectIrq,
                [
                    u64::from(injection.intid),
                    u64::from(injection.priority),
                    u64::from(injection.level),
                    0,
                ],
            );
            if info.is_error() {
                if info.label() != abi::KernelError::NoFreeListRegister.code()
                    && let Some(n) = self.refused.note()
                {
                    println!(
                        "vmm: injecting INTID {} failed (kernel error {}, refusal {n})",
                        injection.intid,
                        info.label()
                    );
                }
                let _ = self.vgic.injection_failed(u32::from(injection.intid));
            }
        }
    }

    /// Mirrors the guest's virtual-timer enable and priority into the kernel.
    fn push_vtimer(&mut self) {
        let Some(vcpu) = self.vcpu else {
            return;
        };
        let (enabled, priority) = self.vgic.vtimer();
        let (info, _) = syscall::invoke(
            vcpu,
            abi::InvocationLabel::VcpuSetVtimer,
            [u64::from(enabled), u64::from(priority), 0, 0],
        );
        if info.is_error() {
            println!(
                "vmm: configuring the virtual timer failed (kernel error {})",
                info.label()
            );
        }
    }
}
