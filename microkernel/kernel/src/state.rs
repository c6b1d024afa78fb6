//! The kernel's global state and the one place it is reached from.
//!
//! The kernel runs on one CPU with interrupts masked whenever it executes, and every entry
//! (system call, fault, interrupt) runs to completion before returning to a thread, so at most
//! one `&mut Kernel` is ever live. [`KernelCell::get`] is the single unsafe door to it.

use crate::arch::{Arch, Current};
use crate::loader::ServerImage;
use crate::vspace::GuestVSpace;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use kernel_core::system::System;

/// Everything the kernel owns after boot.
pub struct Kernel {
    /// Every object and the scheduler.
    pub system: System<'static>,
    /// Each server's memory and pristine image, by thread index.
    pub images: &'static mut [ServerImage],
    /// The system's name.
    pub name: &'static str,
    /// Round-robin time slice.
    pub timeslice_us: u64,
    /// The counter value at which the next preemption tick is due (timers.rs).
    pub tick_at: u64,
    /// The VTTBR value currently installed.
    pub installed_vspace: u64,
    /// Each VM's VCPU state, by VM index.
    pub vcpus: &'static mut [<Current as Arch>::VcpuState],
    /// Each VM's stage-2 address space, by VM index.
    pub vspaces: &'static mut [GuestVSpace],
    /// Each VM's manifest name.
    pub vm_names: &'static mut [&'static str],
    /// What each VM is rebuilt from on reset.
    pub vm_images: &'static mut [crate::guest::VmImage],
    /// The VCPU the CPU is configured to run (HCR_VCPU), or `None` when it runs servers.
    pub world: Option<u16>,
    /// The VCPU whose EL1 and FP state is in the registers.
    pub loaded_vcpu: Option<u16>,
    /// The maintenance interrupt was taken while the loaded VCPU's guest did not run and is
    /// masked until it runs again (vcpu.rs).
    pub maintenance_deferred: bool,
    /// Console input not yet read (`DebugInputRead`).
    pub console_input: crate::console::InputBuffer,
}

impl Kernel {
    /// Wraps the booted system.
    pub fn new(
        system: System<'static>,
        images: &'static mut [ServerImage],
        name: &'static str,
        timeslice_us: u64,
    ) -> Self {
        Self {
            system,
            images,
            name,
            timeslice_us,
            tick_at: 0,
            installed_vspace: 0,
            vcpus: &mut [],
            vspaces: &mut [],
            vm_names: &mut [],
            vm_images: &mut [],
            world: None,
            loaded_vcpu: None,
            maintenance_deferred: false,
            console_input: crate::console::InputBuffer::new(),
        }
    }
}

impl Kernel {
    /// The thread of VM `vm`'s VCPU: boot places servers first, then one thread per VM.
    pub fn vcpu_thread(&self, vm: u16) -> kernel_core::TcbId {
        (self.images.len() + usize::from(vm)) as kernel_core::TcbId
    }

    /// The manifest name of thread `tcb`, a server's or a VM's.
    pub fn thread_name(&self, tcb: kernel_core::TcbId) -> &'static str {
        let index = usize::from(tcb);
        match self.images.get(index) {
            Some(image) => image.name,
            None => self
                .vm_names
                .get(index - self.images.len())
                .copied()
                .unwrap_or("?"),
        }
    }
}

/// The cell holding the kernel state.
pub struct KernelCell(UnsafeCell<MaybeUninit<Kernel>>);

// SAFETY: the kernel is uniprocessor and non-reentrant (see the module docs); the cell is
// written once at boot before any exception can reach `get`.
unsafe impl Sync for KernelCell {}

/// The kernel state.
pub static KERNEL: KernelCell = KernelCell(UnsafeCell::new(MaybeUninit::uninit()));

impl KernelCell {
    /// Stores the booted state. Called once, at boot, before the first return to EL0.
    pub fn init(&self, kernel: Kernel) -> &'static mut Kernel {
        // SAFETY: boot runs once with exceptions from EL0 impossible (no thread has run yet),
        // so nothing else can hold a reference into the cell.
        unsafe { (*self.0.get()).write(kernel) }
    }

    /// The kernel state.
    ///
    /// # Safety
    /// 1. [`KernelCell::init`] has run.
    /// 2. The caller is a kernel entry point, and no other reference obtained from this cell is
    ///    live (kernel entries do not nest: the kernel runs with interrupts masked).
    pub unsafe fn get(&self) -> &'static mut Kernel {
        // SAFETY: exclusive (obligation 2).
        let cell = unsafe { &mut *self.0.get() };
        // SAFETY: initialised (obligation 1).
        unsafe { cell.assume_init_mut() }
    }
}
