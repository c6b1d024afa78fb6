//! The GICv3 virtual CPU interface registers (ICH_*_EL2, GICv3 IHI 0069 §12.5): copied between
//! the hardware and a VCPU's [`VgicCpu`] when another VCPU is loaded (the lazy set), and read or
//! written one list register at a time when the kernel injects or completes an interrupt of the
//! loaded VCPU. The decisions are kernel-core's (`vgic.rs`); this file only moves registers.
//!
//! While servers run (HCR_EL2.TGE = 1) virtual interrupts are never signalled, so the loaded
//! VCPU's list registers can stay live under them, as its other EL1 state does.

use core::sync::atomic::{AtomicU8, Ordering};
use kernel_core::vgic::{MAX_LIST_REGISTERS, VgicCpu};

/// The number of list registers in use, read from ICH_VTR_EL2 at boot.
static LIST_REGISTERS: AtomicU8 = AtomicU8::new(0);

/// Reads ICH_VTR_EL2.ListRegs (bits [4:0], the count minus one) once at boot.
pub fn init() {
    let vtr: u64;
    // SAFETY: reading ICH_VTR_EL2 has no side effect; GICv3 with virtualisation is the platform.
    unsafe { core::arch::asm!("mrs {}, ich_vtr_el2", out(reg) vtr) };
    let count = ((vtr & 0x1F) + 1).min(MAX_LIST_REGISTERS as u64) as u8;
    LIST_REGISTERS.store(count, Ordering::Relaxed);
}

/// A VCPU's interface out of reset.
pub fn new_cpu() -> VgicCpu {
    VgicCpu::new(LIST_REGISTERS.load(Ordering::Relaxed))
}

/// Reads list register `index` (< [`MAX_LIST_REGISTERS`]) of the loaded VCPU.
pub fn read_lr(index: usize) -> u64 {
    debug_assert!(index < MAX_LIST_REGISTERS);
    let value: u64;
    match index {
        // SAFETY: reading a list register has no side effect.
        0 => unsafe { core::arch::asm!("mrs {}, ich_lr0_el2", out(reg) value) },
        // SAFETY: as above.
        1 => unsafe { core::arch::asm!("mrs {}, ich_lr1_el2", out(reg) value) },
        // SAFETY: as above.
        2 => unsafe { core::arch::asm!("mrs {}, ich_lr2_el2", out(reg) value) },
        // SAFETY: as above.
        _ => unsafe { core::arch::asm!("mrs {}, ich_lr3_el2", out(reg) value) },
    }
    value
}

/// Writes list register `index` of the loaded VCPU.
pub fn write_lr(index: usize, value: u64) {
    debug_assert!(index < MAX_LIST_REGISTERS);
    match index {
        // SAFETY: a list register only describes a virtual interrupt for the loaded guest;
        // the ISB makes it visible to the next guest entry.
        0 => unsafe { core::arch::asm!("msr ich_lr0_el2, {}", "isb", in(reg) value) },
        // SAFETY: as above.
        1 => unsafe { core::arch::asm!("msr ich_lr1_el2, {}", "isb", in(reg) value) },
        // SAFETY: as above.
        2 => unsafe { core::arch::asm!("msr ich_lr2_el2, {}", "isb", in(reg) value) },
        // SAFETY: as above.
        _ => unsafe { core::arch::asm!("msr ich_lr3_el2, {}", "isb", in(reg) value) },
    }
}

/// Copies the loaded VCPU's list registers into `cpu` (they change under the guest: it
/// acknowledges and completes interrupts without exiting).
pub fn read_live_lrs(cpu: &mut VgicCpu) {
    for index in 0..usize::from(cpu.count) {
        cpu.lrs[index] = read_lr(index);
    }
}

/// Writes ICH_HCR_EL2 of the loaded VCPU.
pub fn write_hcr(value: u64) {
    // SAFETY: ICH_HCR_EL2 configures the virtual CPU interface of the loaded guest only.
    unsafe { core::arch::asm!("msr ich_hcr_el2, {}", "isb", in(reg) value) };
}

/// ICH_MISR_EL2: why the maintenance interrupt is asserted.
pub fn maintenance_status() -> u64 {
    let misr: u64;
    // SAFETY: reading ICH_MISR_EL2 has no side effect.
    unsafe { core::arch::asm!("mrs {}, ich_misr_el2", out(reg) misr) };
    misr
}

/// Saves the live interface into `cpu`.
pub fn save(cpu: &mut VgicCpu) {
    read_live_lrs(cpu);
    // SAFETY: reading the virtual interface's state has no side effect.
    unsafe {
        core::arch::asm!(
            "mrs {hcr}, ich_hcr_el2",
            "mrs {vmcr}, ich_vmcr_el2",
            "mrs {ap0}, ich_ap0r0_el2",
            "mrs {ap1}, ich_ap1r0_el2",
            hcr = out(reg) cpu.hcr,
            vmcr = out(reg) cpu.vmcr,
            ap0 = out(reg) cpu.ap0r0,
            ap1 = out(reg) cpu.ap1r0,
        );
    }
}

/// Makes `cpu` the live interface.
pub fn load(cpu: &VgicCpu) {
    // SAFETY: these registers describe the virtual interface of the VCPU being loaded; they
    // only take effect in guest mode (TGE = 0).
    unsafe {
        core::arch::asm!(
            "msr ich_vmcr_el2, {vmcr}",
            "msr ich_ap0r0_el2, {ap0}",
            "msr ich_ap1r0_el2, {ap1}",
            "msr ich_hcr_el2, {hcr}",
            vmcr = in(reg) cpu.vmcr,
            ap0 = in(reg) cpu.ap0r0,
            ap1 = in(reg) cpu.ap1r0,
            hcr = in(reg) cpu.hcr,
        );
    }
    for index in 0..usize::from(cpu.count) {
        write_lr(index, cpu.lrs[index]);
    }
}
