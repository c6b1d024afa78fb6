//! aarch64 at EL2 (non-VHE): the only architecture so far. Everything that touches a system
//! register, the GIC, the timer or the UART lives below this module.

pub mod cache;
pub mod cpu;
pub mod entry;
pub mod exit;
pub mod gic;
pub mod mmu;
pub mod semihosting;
pub mod timer;
pub mod uart;
pub mod vcpu;
pub mod vgic;

use aarch64_cpu::registers::*;

/// The aarch64 implementation of [`crate::arch::Arch`].
pub struct Aarch64;

impl super::Arch for Aarch64 {
    type VcpuState = vcpu::VcpuState;

    fn new_vcpu_state() -> vcpu::VcpuState {
        let mut state = vcpu::VcpuState::new();
        // Each VM's virtual counter starts at 0 when the VM is created (or reset): a guest
        // learns nothing of how long the machine has run, and no VM shares its time base.
        state.el1[vcpu::el1::CNTVOFF] = timer::now();
        state
    }

    fn guest_entry_pstate() -> u64 {
        0x3C5 // EL1h, D, A, I, F masked (ARM ARM C5.2.19 SPSR_EL2)
    }

    fn pend_guest_serror(state: &mut vcpu::VcpuState) {
        vcpu::pend_serror(state);
    }

    fn set_guest_mode(guest: bool, state: &mut vcpu::VcpuState) {
        vcpu::set_guest_mode(guest, state);
    }

    fn vgic(state: &mut vcpu::VcpuState) -> &mut kernel_core::vgic::VgicCpu {
        &mut state.vgic
    }

    fn vgic_read_live(cpu: &mut kernel_core::vgic::VgicCpu) {
        vgic::read_live_lrs(cpu);
    }

    fn vgic_write_lr(index: usize, value: u64) {
        vgic::write_lr(index, value);
    }

    fn vgic_write_hcr(value: u64) {
        vgic::write_hcr(value);
    }

    fn vgic_maintenance_status() -> u64 {
        vgic::maintenance_status()
    }

    fn guest_timer_intid() -> u32 {
        crate::plat::layout::GUEST_TIMER_INTID
    }

    fn switch_loaded_vcpu(old: Option<&mut vcpu::VcpuState>, new: &vcpu::VcpuState) {
        vcpu::switch_loaded(old, new);
    }

    fn guest_fault_ipa(esr: u64, far: u64) -> Option<u64> {
        exit::fault_ipa(esr, far)
    }

    #[inline(always)]
    fn decode_guest_exit(context: &kernel_core::tcb::UserContext) -> Option<abi::vm::VmExit> {
        exit::decode(ESR_EL2.get(), FAR_EL2.get(), context)
    }

    fn inject_guest_exception(
        context: &mut kernel_core::tcb::UserContext,
        abort: bool,
        address: u64,
        exit_syndrome: u64,
    ) {
        exit::inject(context, abort, address, exit_syndrome);
    }

    fn init_early() {
        mmu::init();
    }

    fn init() {
        if let Err(problem) = mmu::verify() {
            crate::kprintln!("KERNEL PANIC: EL2 map: {problem}");
            semihosting::exit(101);
        }
        crate::kprintln!("kernel: EL2 map: text R+X, rodata R, data RW+XN, stack guard unmapped");
        cpu::init();
        vcpu::init_identity();
        gic::init();
        vgic::init();
    }

    fn console_write(bytes: &[u8]) {
        uart::write(bytes);
    }

    fn console_enable_input() {
        uart::enable_receive();
    }

    fn console_drain_input(sink: impl FnMut(u8)) {
        uart::drain_receive(sink);
    }

    fn console_intid() -> u32 {
        crate::plat::layout::UART_INTID
    }

    fn system_off(status: u64) -> ! {
        semihosting::exit(status)
    }

    fn switch_vspace(root: u64) {
        cpu::switch_vspace(root);
    }

    fn invalidate_after_reload() {
        cpu::invalidate_after_reload();
    }

    fn zero(start: u64, len: u64) {
        cache::zero(start, len);
    }

    fn clean_for_guest(start: u64, len: u64) {
        cache::clean_invalidate_to_poc(start, len);
    }

    fn clean_frame_for_guest(start: u64, len: u64) {
        cache::clean_to_poc(start, len);
    }

    fn clean_for_execution(start: u64, len: u64) {
        cache::clean_to_pou(start, len);
    }

    fn enter_vmid(vttbr: u64) -> u64 {
        let previous = VTTBR_EL2.get();
        cpu::switch_vspace(vttbr);
        previous
    }

    fn leave_vmid(previous: u64) {
        cpu::switch_vspace(previous);
    }

    fn tlb_op(op: kernel_core::stage2::TlbOp) {
        cpu::tlb_op(op);
    }

    fn counter_now() -> u64 {
        timer::now()
    }

    fn counter_ticks(microseconds: u64) -> u64 {
        microseconds * timer::ticks_per_microsecond()
    }

    fn arm_timer_at(deadline: u64) {
        timer::arm_at(deadline);
    }

    fn saved_guest_timer_deadline(state: &vcpu::VcpuState) -> Option<u64> {
        vcpu::saved_timer_deadline(state)
    }

    fn timer_intid() -> u32 {
        crate::plat::layout::HYP_TIMER_INTID
    }

    fn acknowledge_irq() -> Option<u32> {
        gic::acknowledge()
    }

    fn end_irq(intid: u32) {
        gic::end(intid);
    }

    fn mask_irq(intid: u32) {
        gic::mask(intid);
    }

    fn unmask_irq(intid: u32) {
        gic::unmask(intid);
    }

    fn wait_for_interrupt() {
        aarch64_cpu::asm::wfi();
    }

    #[inline(always)]
    fn syndrome() -> u64 {
        ESR_EL2.get()
    }

    fn exception_syndrome() -> (u64, u64) {
        (ESR_EL2.get(), FAR_EL2.get())
    }
}
