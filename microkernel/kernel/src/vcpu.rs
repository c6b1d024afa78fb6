//! The VCPU object's interrupt side: its GICv3 list registers, the guest's virtual timer, the
//! maintenance interrupt, and WFI (seL4's `vcpu.c`: `decodeVCPUInjectIRQ`, `VGICMaintenance`,
//! `VPPIEvent`; here the vtimer is injected by the kernel, as KVM's arch timer is).
//!
//! Decisions are kernel-core's (`vgic.rs`), registers are the arch layer's; this file holds the
//! rules that tie them to the scheduler:
//!
//! - **The vtimer line.** The loaded VCPU's virtual timer (PPI 27) is unmasked at the GIC exactly
//!   when the guest enabled it at its redistributor and the previous expiry is no longer in a
//!   list register ([`VgicCpu::vtimer_armed`]). When it fires the kernel masks it, injects INTID
//!   27 with an EOI maintenance request and wakes the VCPU; the guest's completion comes back as
//!   a maintenance interrupt, the list register is freed and the line unmasked again, so a timer
//!   that still asserts fires again at once (level semantics).
//! - **Maintenance.** Completions of the vmm's level interrupts, and underflow, are exits to the
//!   vmm (`VgicMaintenance`), delivered from the guest's own context. The maintenance interrupt
//!   can only be asserted by what the guest did, so it normally arrives while the guest runs; if
//!   it is taken while something else runs, the kernel masks it and unmasks it when the guest is
//!   next entered, where it is taken again and delivered.
//! - **WFI.** A VCPU waiting for an interrupt is woken when a list register becomes pending (an
//!   injection by the vmm, the vtimer), KVM's `kvm_vcpu_block` / `kvm_arch_vcpu_runnable`.

use crate::arch::{Arch, Current};
use crate::state::Kernel;
use crate::trap::PhysicalIpcBuffers;
use abi::vm::{NO_INTID, VmExit, VmExitKind};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel_core::system::Effect;
use kernel_core::tcb::PC;
use kernel_core::vgic::{self, MAINTENANCE_INTID, VTIMER_INTID, VgicCpu};

/// The loaded VCPU's interface, with its list registers read from the hardware.
fn loaded_live(kernel: &mut Kernel) -> Option<(u16, &mut VgicCpu)> {
    let vcpu = kernel.loaded_vcpu?;
    let cpu = Current::vgic(kernel.vcpus.get_mut(usize::from(vcpu))?);
    Current::vgic_read_live(cpu);
    Some((vcpu, cpu))
}

/// Whether the vtimer's line is unmasked at the GIC now. Every guest entry checks the line's
/// mask; a GIC redistributor write costs a few hundred instructions under emulation, so it is
/// written only when it must change.
static VTIMER_UNMASKED: AtomicBool = AtomicBool::new(false);

/// Masks or unmasks the vtimer's line, writing the GIC only when that changes anything.
fn set_vtimer_line(unmasked: bool) {
    if VTIMER_UNMASKED.swap(unmasked, Ordering::Relaxed) != unmasked {
        if unmasked {
            Current::unmask_irq(VTIMER_INTID);
        } else {
            Current::mask_irq(VTIMER_INTID);
        }
    }
}

/// Sets the vtimer line's mask for the loaded VCPU's state `cpu`.
fn sync_vtimer_mask(cpu: &VgicCpu) {
    set_vtimer_line(cpu.vtimer_armed());
}

/// The loaded VCPU's virtual timer fired: inject it, wake the VCPU.
pub fn vtimer_fired(kernel: &mut Kernel) {
    set_vtimer_line(false);
    let Some((vcpu, cpu)) = loaded_live(kernel) else {
        return;
    };
    if !cpu.vtimer_enabled {
        // Stays masked until the guest enables it (`VcpuSetVtimer`).
        return;
    }
    match cpu.plan_inject(VTIMER_INTID, cpu.vtimer_priority, true) {
        Ok(write) => {
            cpu.lrs[write.index] = write.value;
            Current::vgic_write_lr(write.index, write.value);
        }
        Err(_) => {
            // Every list register is busy: ask for underflow; the maintenance handler unmasks
            // the line again and it fires once there is room.
            cpu.hcr |= vgic::hcr::UIE;
            Current::vgic_write_hcr(cpu.hcr);
            return;
        }
    }
    let tcb = kernel.vcpu_thread(vcpu);
    kernel.system.wake_vcpu(tcb);
}

/// The maintenance interrupt. `from_guest`: it was taken while the loaded VCPU's guest ran, so
/// the current thread is its VCPU thread and an exit can be delivered now.
pub fn maintenance(kernel: &mut Kernel, from_guest: bool) -> Effect {
    let misr = Current::vgic_maintenance_status();
    let Some((_, cpu)) = loaded_live(kernel) else {
        // No VCPU is loaded, so no list register is live: nothing can assert it.
        debug_assert!(false, "maintenance interrupt with no VCPU loaded");
        Current::mask_irq(MAINTENANCE_INTID);
        return Effect::None;
    };
    let mut exit_words = [NO_INTID; 6];
    let mut reported = 0;
    let mut defer = false;
    for index in 0..usize::from(cpu.count) {
        let value = cpu.lrs[index];
        if !vgic::awaits_maintenance(value) {
            continue;
        }
        let intid = value & vgic::lr::INTID_MASK;
        if intid != u64::from(VTIMER_INTID) {
            if !from_guest {
                defer = true;
                continue;
            }
            exit_words[reported] = intid;
            reported += 1;
        }
        cpu.lrs[index] = 0;
        Current::vgic_write_lr(index, 0);
    }
    let underflow = misr & vgic::misr::UNDERFLOW != 0;
    if underflow {
        cpu.hcr &= !vgic::hcr::UIE;
        Current::vgic_write_hcr(cpu.hcr);
    }
    sync_vtimer_mask(cpu);
    if defer {
        // Left asserted for the vmm: taken again when the guest next runs (`entering_guest`).
        Current::mask_irq(MAINTENANCE_INTID);
        kernel.maintenance_deferred = true;
    }
    if !from_guest || (reported == 0 && !underflow) {
        return Effect::None;
    }
    exit_words[4] = u64::from(underflow);
    exit_words[5] = 0;
    let system = &mut kernel.system;
    let exit = VmExit {
        kind: VmExitKind::VgicMaintenance,
        pc: system.tcb(system.current).context.regs[PC],
        esr: 0,
        words: exit_words,
    };
    system.handle_vm_exit(&mut PhysicalIpcBuffers, exit)
}

/// About to run the loaded VCPU's guest: the vtimer line per its state, and a maintenance
/// interrupt deferred while it was not running.
pub fn entering_guest(kernel: &mut Kernel, vcpu: u16) {
    if let Some(state) = kernel.vcpus.get_mut(usize::from(vcpu)) {
        sync_vtimer_mask(Current::vgic(state));
    }
    if kernel.maintenance_deferred {
        kernel.maintenance_deferred = false;
        Current::unmask_irq(MAINTENANCE_INTID);
    }
}

/// The interface of `vcpu` for an invocation by the current thread, with its list registers
/// read from the hardware when it is the loaded VCPU (and whether it is). `None`, with the
/// caller answered `InvalidArgument`, for a VCPU that does not exist: its capability's decode
/// rules that out, so it is a broken invariant.
fn invoked_interface(kernel: &mut Kernel, vcpu: u16) -> Option<(bool, &mut VgicCpu)> {
    let loaded = kernel.loaded_vcpu == Some(vcpu);
    if kernel.vcpus.get(usize::from(vcpu)).is_none() {
        debug_assert!(false, "VCPU capability {vcpu} names no VCPU");
        let caller = kernel.system.current;
        kernel
            .system
            .set_error(caller, abi::KernelError::InvalidArgument { index: 0 });
        return None;
    }
    let cpu = Current::vgic(kernel.vcpus.get_mut(usize::from(vcpu))?);
    if loaded {
        Current::vgic_read_live(cpu);
    }
    Some((loaded, cpu))
}

/// `VcpuInjectIrq`, decoded: into a list register of `vcpu`, or `NoFreeListRegister` for the
/// caller (then underflow maintenance is requested, so the vmm hears when registers free up).
pub fn inject(kernel: &mut Kernel, vcpu: u16, intid: u32, priority: u8, level: bool) {
    let caller = kernel.system.current;
    let Some((loaded, cpu)) = invoked_interface(kernel, vcpu) else {
        return;
    };
    match cpu.plan_inject(intid, priority, level) {
        Ok(write) => {
            cpu.lrs[write.index] = write.value;
            if loaded {
                Current::vgic_write_lr(write.index, write.value);
            }
            let tcb = kernel.vcpu_thread(vcpu);
            kernel.system.wake_vcpu(tcb);
        }
        Err(error) => {
            cpu.hcr |= vgic::hcr::UIE;
            if loaded {
                Current::vgic_write_hcr(cpu.hcr);
            }
            kernel.system.set_error(caller, error);
        }
    }
}

/// `VcpuListRegisters`, decoded: the INTIDs `vcpu`'s list registers hold, to the caller.
pub fn list_registers(kernel: &mut Kernel, vcpu: u16) {
    let caller = kernel.system.current;
    let Some((_, cpu)) = invoked_interface(kernel, vcpu) else {
        return;
    };
    let held = cpu.held_intids();
    kernel.system.set_result(caller, &held);
}

/// `VcpuSetVtimer`, decoded.
pub fn set_vtimer(kernel: &mut Kernel, vcpu: u16, enabled: bool, priority: u8) {
    let loaded = kernel.loaded_vcpu == Some(vcpu);
    let Some(state) = kernel.vcpus.get_mut(usize::from(vcpu)) else {
        debug_assert!(false, "VCPU capability {vcpu} names no VCPU");
        return;
    };
    let cpu = Current::vgic(state);
    cpu.vtimer_enabled = enabled;
    cpu.vtimer_priority = priority;
    if loaded {
        Current::vgic_read_live(cpu);
        sync_vtimer_mask(cpu);
    }
}

/// The vmm parked VCPU thread `tcb` on a WFI: wake it at once if an interrupt is pending for
/// it, else let its vtimer's next expiry in.
pub fn wait_for_interrupt(kernel: &mut Kernel, tcb: kernel_core::TcbId, vcpu: u16) {
    let Some((_, cpu)) = loaded_live(kernel) else {
        return;
    };
    let pending = cpu.any_pending();
    sync_vtimer_mask(cpu);
    if pending {
        kernel.system.wake_vcpu(tcb);
    }
    debug_assert_eq!(kernel.loaded_vcpu, Some(vcpu));
}
