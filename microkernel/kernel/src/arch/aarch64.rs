//! aarch64 at EL2 (non-VHE): the only architecture so far. Everything that touches a system
//! register, the GIC, the timer or the UART lives below this module.

pub mod cpu;
pub mod entry;
pub mod gic;
pub mod mmu;
pub mod semihosting;
pub mod timer;
pub mod uart;

use aarch64_cpu::registers::*;

/// The aarch64 implementation of [`crate::arch::Arch`].
pub struct Aarch64;

impl super::Arch for Aarch64 {
    fn init_early() {
        mmu::init();
    }

    fn init() {
        cpu::init();
        gic::init();
    }

    fn console_write(bytes: &[u8]) {
        uart::write(bytes);
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

    fn arm_timer(microseconds: u64) {
        timer::arm(microseconds * timer::ticks_per_microsecond());
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
