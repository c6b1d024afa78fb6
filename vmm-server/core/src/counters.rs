//! Exit counters for the power-off summary line, one per exit, under its final class.
//!
//! A stage-2 abort counts as `stage2` when the mmu-server resolved (or failed to resolve) it as
//! memory, and as `mmio` when it was not memory: routed to a device or answered as a hole. So
//! `stage2` is the vmm's view of the mmu-server's work and `mmio` the device path's.

use crate::exit::Stage2Answer;
use abi::vm::{VmExit, VmExitKind};
use core::fmt;

/// Exits by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCounters {
    /// Stage-2 aborts on memory.
    pub stage2: u64,
    /// Stage-2 aborts on anything else (devices and holes).
    pub mmio: u64,
    /// Hypercalls (`hvc` and `smc`).
    pub hvc: u64,
    /// WFI / WFE.
    pub wfi: u64,
    /// Trapped system-register accesses, emulated (RAZ/WI) or not (undefined).
    pub sysreg: u64,
    /// Virtual-interrupt maintenance (the guest completed a level interrupt, or underflow).
    pub irq: u64,
    /// Everything else.
    pub other: u64,
}

impl ExitCounters {
    /// Counts `exit`; `stage2` is the mmu-server's answer when it was asked.
    pub fn count(&mut self, exit: &VmExit, stage2: Option<Stage2Answer>) {
        let counter = match (exit.kind, stage2) {
            (VmExitKind::Stage2Abort, Some(Stage2Answer::NotMemory)) => &mut self.mmio,
            (VmExitKind::Stage2Abort, _) => &mut self.stage2,
            (VmExitKind::Hypercall, _) => &mut self.hvc,
            (VmExitKind::WaitForInterrupt, _) => &mut self.wfi,
            (VmExitKind::SystemRegister, _) => &mut self.sysreg,
            (VmExitKind::VgicMaintenance, _) => &mut self.irq,
            (VmExitKind::Other | VmExitKind::SError, _) => &mut self.other,
        };
        *counter = counter.saturating_add(1);
    }

    /// All exits.
    pub fn total(&self) -> u64 {
        [
            self.stage2,
            self.mmio,
            self.hvc,
            self.wfi,
            self.sysreg,
            self.irq,
            self.other,
        ]
        .iter()
        .fold(0u64, |sum, n| sum.saturating_add(*n))
    }
}

/// `stage2=… mmio=… hvc=… wfi=… sysreg=… irq=… other=…`, the summary line's body.
impl fmt::Display for ExitCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage2={} mmio={} hvc={} wfi={} sysreg={} irq={} other={}",
            self.stage2, self.mmio, self.hvc, self.wfi, self.sysreg, self.irq, self.other
        )
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    fn exit(kind: VmExitKind) -> VmExit {
        VmExit {
            kind,
            pc: 0,
            esr: 0,
            words: [0; 6],
        }
    }

    #[test]
    fn each_exit_counts_once_under_its_final_class() {
        let mut counters = ExitCounters::default();
        counters.count(&exit(VmExitKind::Stage2Abort), Some(Stage2Answer::Mapped));
        counters.count(&exit(VmExitKind::Stage2Abort), Some(Stage2Answer::Mapped));
        counters.count(&exit(VmExitKind::Stage2Abort), Some(Stage2Answer::Failed));
        counters.count(
            &exit(VmExitKind::Stage2Abort),
            Some(Stage2Answer::NotMemory),
        );
        counters.count(&exit(VmExitKind::Stage2Abort), None);
        counters.count(&exit(VmExitKind::Hypercall), None);
        counters.count(&exit(VmExitKind::WaitForInterrupt), None);
        counters.count(&exit(VmExitKind::SystemRegister), None);
        counters.count(&exit(VmExitKind::SystemRegister), None);
        counters.count(&exit(VmExitKind::Other), None);
        counters.count(&exit(VmExitKind::VgicMaintenance), None);
        assert_eq!(
            counters,
            ExitCounters {
                stage2: 4,
                mmio: 1,
                hvc: 1,
                wfi: 1,
                sysreg: 2,
                irq: 1,
                other: 1
            }
        );
        assert_eq!(counters.total(), 11);
        assert_eq!(
            counters.to_string(),
            "stage2=4 mmio=1 hvc=1 wfi=1 sysreg=2 irq=1 other=1"
        );
    }
}
