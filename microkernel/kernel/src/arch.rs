//! The boundary between portable kernel code and the architecture: one trait, one
//! implementation selected here. Portable code names `Current` and nothing below it.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::Aarch64 as Current;

/// What the portable kernel needs from the architecture.
pub trait Arch {
    /// The kernel's own address space; first thing at boot.
    fn init_early();
    /// Exception vectors, hypervisor configuration, interrupt controller.
    fn init();
    /// Writes bytes to the kernel console.
    fn console_write(bytes: &[u8]);
    /// Stops the machine with an exit status.
    fn system_off(status: u64) -> !;
    /// Installs an address space (arch-opaque root value).
    fn switch_vspace(root: u64);
    /// Drops cached translations and instructions after a server's memory was reloaded.
    fn invalidate_after_reload();
    /// Arms the preemption timer.
    fn arm_timer(microseconds: u64);
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
