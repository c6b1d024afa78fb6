//! The boundary between portable kernel code and the architecture: one trait, one
//! implementation selected here. Portable code names `Current` and nothing below it.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::Aarch64 as Current;

/// What the portable kernel needs from the architecture.
pub trait Arch {
    /// A VCPU's architectural state beyond its general registers.
    type VcpuState;
    /// A VCPU out of reset.
    fn new_vcpu_state() -> Self::VcpuState;
    /// The PSTATE a guest starts with (EL1, interrupts masked).
    fn guest_entry_pstate() -> u64;
    /// Configures the CPU to run a guest (`true`) or servers (`false`); `vcpu` is the guest's
    /// state (the loaded VCPU), updated with what leaving it must keep.
    fn set_guest_mode(guest: bool, vcpu: &mut Self::VcpuState);
    /// Makes a virtual SError pending for a VCPU; it is taken when the guest next runs with
    /// SErrors unmasked.
    fn pend_guest_serror(vcpu: &mut Self::VcpuState);
    /// A VCPU's virtual CPU interface (its list registers as last saved).
    fn vgic(vcpu: &mut Self::VcpuState) -> &mut kernel_core::vgic::VgicCpu;
    /// Copies the loaded VCPU's live list registers into `cpu`.
    fn vgic_read_live(cpu: &mut kernel_core::vgic::VgicCpu);
    /// Writes one list register of the loaded VCPU.
    fn vgic_write_lr(index: usize, value: u64);
    /// Writes the loaded VCPU's ICH_HCR_EL2.
    fn vgic_write_hcr(value: u64);
    /// Why the virtual CPU interface's maintenance interrupt is asserted (ICH_MISR_EL2 bits,
    /// kernel-core `vgic::misr`).
    fn vgic_maintenance_status() -> u64;
    /// The virtual timer's interrupt id (PPI 11 = INTID 27).
    fn guest_timer_intid() -> u32;
    /// Saves the loaded VCPU (when there is one) and loads another.
    fn switch_loaded_vcpu(old: Option<&mut Self::VcpuState>, new: &Self::VcpuState);
    /// The IPA of a guest's stage-2 abort with syndrome `esr` and fault address `far`, when it
    /// can be known.
    fn guest_fault_ipa(esr: u64, far: u64) -> Option<u64>;
    /// Decodes the exit just taken from a guest with general registers `context`; `None` when
    /// the guest should simply run again (nothing to report).
    fn decode_guest_exit(context: &kernel_core::tcb::UserContext) -> Option<abi::vm::VmExit>;
    /// Injects an abort at `address` (or an undefined instruction) into the loaded guest; an
    /// abort answering an instruction-fetch exit (`exit_syndrome`) is an instruction abort.
    fn inject_guest_exception(
        context: &mut kernel_core::tcb::UserContext,
        abort: bool,
        address: u64,
        exit_syndrome: u64,
    );
    /// The kernel's own address space; first thing at boot.
    fn init_early();
    /// Exception vectors, hypervisor configuration, interrupt controller.
    fn init();
    /// Writes bytes to the kernel console.
    fn console_write(bytes: &[u8]);
    /// Starts taking console input: the receive interrupt at the UART.
    fn console_enable_input();
    /// Moves pending console input to `sink` and quiets the receive interrupt.
    fn console_drain_input(sink: impl FnMut(u8));
    /// The console UART's interrupt id.
    fn console_intid() -> u32;
    /// Stops the machine with an exit status.
    fn system_off(status: u64) -> !;
    /// Installs an address space (arch-opaque root value).
    fn switch_vspace(root: u64);
    /// Drops cached translations and instructions after a server's memory was reloaded.
    fn invalidate_after_reload();
    /// Zeroes RAM the kernel owns, `[start, start + len)` in its map, the fastest way the CPU
    /// has.
    fn zero(start: u64, len: u64);
    /// Makes memory the kernel wrote visible to a guest that reads it with caches off, and
    /// drops any line of it (guest RAM after loading or rebuilding it).
    fn clean_for_guest(start: u64, len: u64);
    /// Makes a frame's contents visible to a guest that reads it with caches off (a frame
    /// about to be mapped into a guest).
    fn clean_frame_for_guest(start: u64, len: u64);
    /// Makes instructions the kernel wrote visible to instruction fetch, before the
    /// instruction cache is invalidated.
    fn clean_for_execution(start: u64, len: u64);
    /// Installs the VMID of `vttbr` for TLB maintenance; returns what to put back.
    fn enter_vmid(vttbr: u64) -> u64;
    /// Puts back the VSpace `enter_vmid` replaced.
    fn leave_vmid(previous: u64);
    /// One barrier or TLB invalidation of a stage-2 plan, for the installed VMID.
    fn tlb_op(op: kernel_core::stage2::TlbOp);
    /// The system counter now.
    fn counter_now() -> u64;
    /// Counter ticks in `microseconds`.
    fn counter_ticks(microseconds: u64) -> u64;
    /// Arms the kernel's timer to interrupt when the counter reaches `deadline`.
    fn arm_timer_at(deadline: u64);
    /// When the virtual timer saved in a VCPU that is not loaded will fire (counter value), or
    /// `None` when it is off or masked.
    fn saved_guest_timer_deadline(vcpu: &Self::VcpuState) -> Option<u64>;
    /// The preemption timer's interrupt id.
    fn timer_intid() -> u32;
    /// Acknowledges the highest-priority pending interrupt.
    fn acknowledge_irq() -> Option<u32>;
    /// Ends an acknowledged interrupt.
    fn end_irq(intid: u32);
    /// Masks an interrupt line.
    fn mask_irq(intid: u32);
    /// Unmasks an interrupt line.
    fn unmask_irq(intid: u32);
    /// Sleeps until an interrupt is pending (interrupts stay masked in the kernel).
    fn wait_for_interrupt();
    /// The syndrome of the exception being handled (ESR).
    fn syndrome() -> u64;
    /// The syndrome and fault address of the exception being handled.
    fn exception_syndrome() -> (u64, u64);
}
