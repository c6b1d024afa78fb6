//! Virtual machines: the exit messages a VCPU thread's fault handler (the vmm-server) receives,
//! the replies that resume the guest, and the attributes of stage-2 mappings.
//!
//! A guest exit the kernel does not handle itself is delivered like a fault: a Call from the
//! VCPU thread to its fault endpoint, label [`crate::FaultKind::VmExit`], message words
//! [`VmExit::to_words`]. The handler's reply (label = [`VmReply`] bits, words as documented
//! there) says how the guest resumes.

/// Why the guest stopped.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExitKind {
    /// A stage-2 data or instruction abort: an IPA with no mapping, or a write to a read-only
    /// one. `words = [ipa, far, write_value]`; `write_value` is the source register of a write
    /// whose syndrome is valid (ESR ISV), else 0.
    Stage2Abort = 1,
    /// `hvc` (PC already past it) or `smc` (PC at it). `words = [x0, x1, x2, x3, x4, x5]`.
    Hypercall = 2,
    /// WFI or WFE (PC at it). `words = []`.
    WaitForInterrupt = 3,
    /// A trapped system-register access (PC at it). `words = [value of Rt for a write]`.
    SystemRegister = 4,
    /// Anything else. `words = [far]`.
    Other = 5,
    /// An SError (asynchronous external abort) taken while the guest ran, attributed to it as
    /// KVM does. `esr` is its syndrome (EC 0x2F); `words = []`.
    SError = 6,
    /// The guest completed virtual interrupts whose list registers asked for it (EOI
    /// maintenance), or the list registers ran empty while the vmm has interrupts queued
    /// (underflow). `pc` and `esr` are 0; `words = [intid0, intid1, intid2, intid3, underflow]`,
    /// unused INTID words [`NO_INTID`]. The guest resumes as it was (reply `RESUME`).
    VgicMaintenance = 7,
}

/// An INTID word of a maintenance exit that names no interrupt (the GIC's spurious INTID).
pub const NO_INTID: u64 = 1023;

/// The badge a VM's n-th virtio device server signals its vmm's `vmm-events` with (the
/// manifest compiler gives it that capability): bit n + 1, so the vmm knows which device's
/// line changed (bit 0 is the default badge of the manifest's own signallers, the PL011).
pub const fn device_event_badge(transport: usize) -> u64 {
    1 << ((transport + 1) % 64)
}

impl VmExitKind {
    /// Decodes the first word of an exit message.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::Stage2Abort,
            2 => Self::Hypercall,
            3 => Self::WaitForInterrupt,
            4 => Self::SystemRegister,
            5 => Self::Other,
            6 => Self::SError,
            7 => Self::VgicMaintenance,
            _ => return None,
        })
    }
}

/// Words of an exit message: kind, pc, esr, then six kind-specific words.
pub const VM_EXIT_WORDS: usize = 9;

/// One guest exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmExit {
    /// Why.
    pub kind: VmExitKind,
    /// The guest PC (ELR_EL2) at the exit.
    pub pc: u64,
    /// The exception syndrome (ESR_EL2).
    pub esr: u64,
    /// Kind-specific words (see [`VmExitKind`]).
    pub words: [u64; 6],
}

impl VmExit {
    /// The message words.
    pub const fn to_words(&self) -> [u64; VM_EXIT_WORDS] {
        let w = self.words;
        [
            self.kind as u64,
            self.pc,
            self.esr,
            w[0],
            w[1],
            w[2],
            w[3],
            w[4],
            w[5],
        ]
    }

    /// Rebuilds an exit from message words.
    pub const fn from_words(words: [u64; VM_EXIT_WORDS]) -> Option<Self> {
        match VmExitKind::from_raw(words[0]) {
            Some(kind) => Some(Self {
                kind,
                pc: words[1],
                esr: words[2],
                words: [words[3], words[4], words[5], words[6], words[7], words[8]],
            }),
            None => None,
        }
    }
}

/// How the guest resumes: bits of the reply label. Reply words: `[register, value, x0, x1, x2,
/// x3]`, read only when the matching bit asks for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VmReply(pub u64);

impl VmReply {
    /// Resume at the same PC.
    pub const RESUME: Self = Self(0);
    /// Step over the exiting instruction (4 bytes).
    pub const ADVANCE_PC: Self = Self(1 << 0);
    /// Write reply word 1 to guest register x<word 0> (an emulated load; 31 = xzr, ignored).
    pub const WRITE_REGISTER: Self = Self(1 << 1);
    /// Write reply words 2..6 to guest x0..x3 (hypercall results).
    pub const SET_RESULTS: Self = Self(1 << 2);
    /// Inject a synchronous external abort for the exit's address into the guest at EL1.
    pub const INJECT_ABORT: Self = Self(1 << 3);
    /// Inject an undefined-instruction exception into the guest at EL1.
    pub const INJECT_UNDEFINED: Self = Self(1 << 4);
    /// Do not resume yet: the VCPU waits until its virtual interrupt line is asserted (a WFI
    /// that blocks until an event; the kernel wakes it when the guest's virtual timer fires).
    pub const WAIT_FOR_INTERRUPT: Self = Self(1 << 5);
    /// Make a virtual SError pending for the guest (HCR_EL2.VSE), taken when its PSTATE.A
    /// allows: how a guest learns of an SError its own access caused.
    pub const INJECT_SERROR: Self = Self(1 << 6);

    /// Both sets of actions.
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every action of `other` is requested.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Attributes of a stage-2 mapping requested through `VSpaceMap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapAttributes(pub u64);

impl MapAttributes {
    /// Readable only.
    pub const READ_ONLY: Self = Self(0);
    /// Writable.
    pub const WRITE: Self = Self(1 << 0);
    /// Executable.
    pub const EXECUTE: Self = Self(1 << 1);
}

/// What a `VSpaceMap` did (reply MR0): the stage-2 prejudgement's outcome (docs/MMU-STAGE2.md).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapAction {
    /// The slot was empty: descriptor written.
    Installed = 0,
    /// The same frame with the same attributes was already there: nothing written.
    NoOp = 1,
    /// Only the permissions changed: rewritten in place, no break-before-make.
    UpdatedInPlace = 2,
    /// Something else was there: break-before-make with TLB invalidation.
    Replaced = 3,
}

impl MapAction {
    /// Decodes reply MR0.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0 => Self::Installed,
            1 => Self::NoOp,
            2 => Self::UpdatedInPlace,
            3 => Self::Replaced,
            _ => return None,
        })
    }
}

/// SMCCC / PSCI function ids the vmm implements (Arm DEN 0028, DEN 0022; docs/GUEST-ABI.md).
pub mod hypercall {
    /// PSCI_VERSION.
    pub const PSCI_VERSION: u64 = 0x8400_0000;
    /// PSCI SYSTEM_OFF (x1 = verdict, our extension).
    pub const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
    /// PSCI SYSTEM_RESET.
    pub const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;
    /// Vendor hypervisor service: enable dirty logging over x1 .. x1 + x2.
    pub const HV_DIRTY_LOG_ENABLE: u64 = 0xC600_0010;
    /// Vendor hypervisor service: read and clear the dirty bitmap over x1 .. x1 + x2.
    pub const HV_DIRTY_LOG_GET_AND_CLEAR: u64 = 0xC600_0011;
    /// Vendor hypervisor service: stop dirty logging over x1 .. x1 + x2 (the range an enable
    /// gave), freeing its window.
    pub const HV_DIRTY_LOG_DISABLE: u64 = 0xC600_0017;
    /// Vendor hypervisor service: stage-2 fault counters.
    pub const HV_STAGE2_FAULTS: u64 = 0xC600_0012;
    /// Vendor hypervisor service: how many times this VM was reset (0 on its first boot).
    pub const HV_BOOT_COUNT: u64 = 0xC600_0013;
    /// Vendor hypervisor service: make a virtual SError pending for the calling VCPU (a test
    /// of the injection path, which a real SError would otherwise be the only way to reach).
    pub const HV_INJECT_SERROR: u64 = 0xC600_0014;
    /// Vendor hypervisor service: how many resets the system's manifest asks this VM to go
    /// through before its real work (`[vms.<name>] resets`, test systems only; 0 when not
    /// asked): a reset-loop test of the guest.
    pub const HV_RESET_LOOP: u64 = 0xC600_0015;
    /// Vendor hypervisor service: a change of the VM's memory map, for testing what the
    /// stage-2 MMIO markers do across one (docs/MMIO.md): the page of the VM's RAM at byte
    /// offset x2 also appears at IPA x1 (memory slot 1, replacing the alias there was); x1 = 0
    /// removes the alias, and the IPA is whatever it was before (a device window, a hole).
    pub const HV_RAM_ALIAS: u64 = 0xC600_0016;
    /// SMCCC NOT_SUPPORTED.
    pub const NOT_SUPPORTED: u64 = u64::MAX;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_round_trip_through_words() {
        let exit = VmExit {
            kind: VmExitKind::Stage2Abort,
            pc: 0x4008_0000,
            esr: 0x9300_0046,
            words: [0x2000_0000, 0x2000_0000, 7, 0, 0, 0],
        };
        assert_eq!(VmExit::from_words(exit.to_words()), Some(exit));
        assert_eq!(VmExit::from_words([0; VM_EXIT_WORDS]), None);
    }

    #[test]
    fn reply_bits_combine() {
        let reply = VmReply::ADVANCE_PC.with(VmReply::SET_RESULTS);
        assert!(reply.contains(VmReply::ADVANCE_PC));
        assert!(!reply.contains(VmReply::INJECT_ABORT));
    }
}
