//! Kernel entry from EL0: system calls, faults and interrupts, then the choice of what runs
//! next. Every entry ends by returning the context of the thread to resume.

use crate::arch::{Arch, Current};
use crate::kprintln;
use crate::state::{KERNEL, Kernel};
use abi::layout::STACK_TOP;
use abi::message::IPC_BUFFER_WORDS;
use abi::{FaultInfo, FaultKind};
use kernel_core::queue::NONE;
use kernel_core::system::{Effect, FastpathOutcome, IpcMemory};
use kernel_core::tcb::{PC, Tcb, UserContext};

/// Exit status when a thread without a fault handler (the supervisor) faults.
pub const STATUS_UNHANDLED_FAULT: u64 = 3;

/// IPC buffers, reached through the kernel's identity map of RAM.
pub struct PhysicalIpcBuffers;

impl IpcMemory for PhysicalIpcBuffers {
    fn read_word(&self, tcb: &Tcb, index: usize) -> u64 {
        if tcb.ipc_buffer == 0 || index >= IPC_BUFFER_WORDS {
            return 0;
        }
        // SAFETY: `ipc_buffer` is the physical address of the thread's own IPC-buffer frame,
        // set at boot; index < IPC_BUFFER_WORDS keeps the access inside that 4 KiB frame.
        unsafe {
            (tcb.ipc_buffer as *const u64)
                .wrapping_add(index)
                .read_volatile()
        }
    }

    fn write_word(&mut self, tcb: &Tcb, index: usize, value: u64) {
        if tcb.ipc_buffer == 0 || index >= IPC_BUFFER_WORDS {
            return;
        }
        // SAFETY: as in `read_word`.
        unsafe {
            (tcb.ipc_buffer as *mut u64)
                .wrapping_add(index)
                .write_volatile(value)
        }
    }
}

/// Exception classes (ARM ARM D17.2.37, ESR_ELx.EC).
mod ec {
    pub const UNKNOWN: u64 = 0x00;
    pub const WFX: u64 = 0x01;
    pub const FP_ACCESS: u64 = 0x07;
    pub const SVC64: u64 = 0x15;
    pub const SYSREG: u64 = 0x18;
    pub const INSTRUCTION_ABORT_LOWER: u64 = 0x20;
    pub const PC_ALIGNMENT: u64 = 0x22;
    pub const DATA_ABORT_LOWER: u64 = 0x24;
    pub const SP_ALIGNMENT: u64 = 0x26;
    pub const BRK64: u64 = 0x3C;
}

/// ESR_EL2.ISS.TI of a trapped WFx: set for WFE (ARM ARM D17.2.37).
const WFX_IS_WFE: u64 = 1;

/// Called by the vectors for every exception from EL0. The IPC fast path is tried first and,
/// when it switches, nothing else runs: no scheduler pass, no effects.
#[unsafe(no_mangle)]
extern "C" fn handle_lower_exception(kind: u64, _context: *mut UserContext) -> *mut UserContext {
    // SAFETY: boot initialised the kernel before the first return to EL0, and this entry is
    // not reentrant (interrupts are masked at EL2).
    let kernel = unsafe { KERNEL.get() };
    if kind == crate::arch::aarch64::entry::KIND_SYNC {
        let system = &mut kernel.system;
        let number = system.tcb(system.current).context.x(7);
        if Current::syndrome() >> 26 == ec::SVC64
            && system.fastpath(number) == FastpathOutcome::Switched
        {
            return install(kernel, kernel.system.current);
        }
    }
    slow_path(kernel, kind)
}

/// Everything but the fast path: full system calls, faults, interrupts, then a scheduler pass.
#[inline(never)]
fn slow_path(kernel: &mut Kernel, kind: u64) -> *mut UserContext {
    let effect = match kind {
        crate::arch::aarch64::entry::KIND_SYNC => handle_sync(kernel),
        crate::arch::aarch64::entry::KIND_IRQ => handle_irqs(kernel, true),
        crate::arch::aarch64::entry::KIND_SERROR => handle_serror(kernel),
        // No interrupt is routed as FIQ here: a spurious one is nobody's fault.
        crate::arch::aarch64::entry::KIND_FIQ => Effect::None,
        other => {
            debug_assert!(false, "exception kind {other} from the vectors");
            Effect::None
        }
    };
    apply(kernel, effect);
    // An injected fault into a thread with no handler (the supervisor) stops the system.
    if let Some(stop) = kernel.system.take_stop() {
        apply(kernel, stop);
    }
    next_context(kernel)
}

fn handle_sync(kernel: &mut Kernel) -> Effect {
    let system = &mut kernel.system;
    let current = system.current;
    if system.tcb(current).vcpu.is_some() {
        let syndrome = Current::syndrome();
        if syndrome >> 26 == ec::WFX && syndrome & WFX_IS_WFE != 0 {
            // WFE waits for an event another CPU would send; on one CPU the guest is spinning
            // on a lock held by a thread that is not running: step over it and yield, without
            // a round trip to the vmm and without sleeping on the guest's timer (which may be
            // off). A WFI still goes to the vmm, which parks the VCPU until an interrupt.
            system.tcb_mut(current).context.regs[PC] += 4;
            return system.handle_syscall(&mut PhysicalIpcBuffers, abi::Syscall::Yield as u64);
        }
        return guest_exit(kernel);
    }
    let (esr, far) = Current::exception_syndrome();
    match esr >> 26 {
        ec::SVC64 => {
            let number = system.tcb(system.current).context.x(7);
            // handle_lower_exception already tried the fast path for this system call.
            system.dispatch_syscall(&mut PhysicalIpcBuffers, number, false)
        }
        ec::WFX => {
            // A server must not idle the CPU: treat WFI/WFE as a yield and step over it.
            let current = system.current;
            system.tcb_mut(current).context.regs[PC] += 4;
            system.handle_syscall(&mut PhysicalIpcBuffers, abi::Syscall::Yield as u64)
        }
        ec::DATA_ABORT_LOWER => fault_current(kernel, FaultKind::DataAbort, far, esr),
        ec::INSTRUCTION_ABORT_LOWER => fault_current(kernel, FaultKind::InstructionAbort, far, esr),
        ec::UNKNOWN | ec::FP_ACCESS | ec::SYSREG => {
            fault_current(kernel, FaultKind::UndefinedInstruction, 0, esr)
        }
        ec::PC_ALIGNMENT | ec::SP_ALIGNMENT => {
            fault_current(kernel, FaultKind::Alignment, far, esr)
        }
        ec::BRK64 => fault_current(kernel, FaultKind::Panic, 0, esr),
        _ => fault_current(kernel, FaultKind::Unknown, far, esr),
    }
}

/// An SError taken from EL0/EL1: a guest's goes to its vmm as a typed exit (which normally
/// answers with a virtual SError); a server's is that server's fault. Never charged to a
/// thread other than the one that ran.
fn handle_serror(kernel: &mut Kernel) -> Effect {
    let current = kernel.system.current;
    if kernel.system.tcb(current).vcpu.is_some() {
        return guest_exit(kernel);
    }
    let (esr, _) = Current::exception_syndrome();
    fault_current(kernel, FaultKind::Unknown, 0, esr)
}

/// The current thread, a VCPU thread, left its guest: the exit goes to its vmm. One place, so
/// the exit record is built where it is consumed and never copied across a call.
#[inline(never)]
fn guest_exit(kernel: &mut Kernel) -> Effect {
    let (esr, far) = Current::exception_syndrome();
    if esr >> 26 == ec::DATA_ABORT_LOWER && mmio_fast(kernel, esr, far) {
        return Effect::None;
    }
    let system = &mut kernel.system;
    match Current::decode_guest_exit(&system.tcb(system.current).context) {
        Some(exit) => system.handle_vm_exit(&mut PhysicalIpcBuffers, exit),
        // The guest runs again from the same instruction and faults afresh if it must.
        None => Effect::None,
    }
}

/// The MMIO fast path (docs/MMIO.md): a stage-2 data abort on a page holding a current MMIO
/// marker goes straight to its device server (or rings a doorbell); `false` when nothing was
/// done and the exit goes to the vmm.
fn mmio_fast(kernel: &mut Kernel, esr: u64, far: u64) -> bool {
    let current = kernel.system.current;
    let Some(vm) = kernel.system.tcb(current).vcpu else {
        return false;
    };
    let Some(ipa) = Current::guest_fault_ipa(esr, far) else {
        return false;
    };
    let Some(space) = kernel.vspaces.get(usize::from(vm)) else {
        return false;
    };
    let found = crate::vspace::descriptor_at(space, ipa);
    kernel
        .system
        .mmio_fastpath(&mut PhysicalIpcBuffers, esr, far, ipa, found)
        == kernel_core::system::MmioOutcome::Handled
}

fn fault_current(kernel: &mut Kernel, kind: FaultKind, address: u64, syndrome: u64) -> Effect {
    let system = &mut kernel.system;
    let pc = system.tcb(system.current).context.regs[PC];
    defmt::info!(
        "fault: thread {=u16} {=str} at pc {=u64:#x} address {=u64:#x} esr {=u64:#x}",
        system.current,
        kind.name(),
        pc,
        address,
        syndrome
    );
    system.handle_fault(
        &mut PhysicalIpcBuffers,
        FaultInfo {
            kind,
            pc,
            address,
            syndrome,
        },
    )
}

/// Takes every pending interrupt: the kernel's timer (the tick, which preempts, and the
/// wake-ups of VCPUs that are not loaded, timers.rs), the loaded guest's virtual timer and the
/// virtual CPU interface's maintenance interrupt (vcpu.rs), and device lines, which signal
/// their notification and stay masked until acknowledged. `from_thread`: taken from a running
/// thread (not the idle loop); a maintenance exit of its guest is the returned effect.
fn handle_irqs(kernel: &mut Kernel, from_thread: bool) -> Effect {
    let mut effect = Effect::None;
    while let Some(intid) = Current::acknowledge_irq() {
        if intid == Current::timer_intid() {
            crate::timers::fired(kernel);
        } else if intid == Current::guest_timer_intid() {
            crate::vcpu::vtimer_fired(kernel);
        } else if intid == kernel_core::vgic::MAINTENANCE_INTID {
            let current = kernel.system.current;
            let from_guest = from_thread
                && kernel.world.is_some()
                && current != NONE
                && kernel.system.tcb(current).vcpu == kernel.world;
            let exit = crate::vcpu::maintenance(kernel, from_guest && effect == Effect::None);
            if exit != Effect::None {
                effect = exit;
            }
        } else if intid == Current::console_intid() {
            console_input_arrived(kernel);
        } else if kernel.system.irq_fired(intid) {
            Current::mask_irq(intid);
        } else {
            // A line nobody asked for: keep it quiet.
            Current::mask_irq(intid);
        }
        Current::end_irq(intid);
    }
    effect
}

/// Console input: into the kernel's buffer, and a signal for its reader.
fn console_input_arrived(kernel: &mut Kernel) {
    let buffer = &mut kernel.console_input;
    Current::console_drain_input(|byte| buffer.push(byte));
    if let Some(ntfn) = kernel.system.console_input {
        kernel
            .system
            .signal(ntfn, abi::message::CONSOLE_INPUT_BADGE);
    }
}

/// Performs what the core asked of the hardware.
fn apply(kernel: &mut Kernel, effect: Effect) {
    match effect {
        Effect::None => {}
        Effect::ResetServer { tcb } if kernel.system.tcb(tcb).vcpu.is_some() => {
            reset_vm(kernel, tcb)
        }
        Effect::ResetServer { tcb } => {
            let image = &kernel.images[usize::from(tcb)];
            image.fill();
            for (start, len) in image.executable_ranges() {
                Current::clean_for_execution(start, len);
            }
            // TLB invalidation by VMID acts on the installed VSpace: install the server's.
            Current::switch_vspace(image.vttbr);
            kernel.installed_vspace = image.vttbr;
            Current::invalidate_after_reload();
            let entry = image.entry();
            let thread = kernel.system.tcb_mut(tcb);
            thread.context = UserContext::new(entry, STACK_TOP);
            thread.timeslice_left = 1;
        }
        Effect::SystemOff { status } => {
            kprintln!("kernel: system `{}` off, status {}", kernel.name, status);
            Current::system_off(status);
        }
        Effect::UnmaskIrq { intid } => Current::unmask_irq(intid),
        Effect::DebugWrite { len } => {
            let (bytes, len) = ipc_buffer_bytes(kernel, len);
            Current::console_write(&bytes[..len]);
        }
        Effect::DebugLog { len } => {
            let (bytes, len) = ipc_buffer_bytes(kernel, len);
            crate::log::write_record(kernel.system.current as u8 + 1, &bytes[..len]);
        }
        Effect::Map {
            vspace,
            pa,
            ipa,
            size,
            attributes,
        } => {
            let caller = kernel.system.current;
            // The frame may hold what its lender wrote through a cacheable mapping; the guest
            // may read it with its caches off (KVM's clean_dcache_guest_page on a CPU without
            // FEAT_S2FWB, as the Cortex-A72 is).
            Current::clean_frame_for_guest(pa, size);
            let space = &mut kernel.vspaces[usize::from(vspace)];
            let action = crate::vspace::map(space, ipa, pa, size, attributes);
            kernel.system.vspaces[usize::from(vspace)].free_tables = space.free_tables;
            match action {
                Some(action) => kernel.system.set_result(caller, &[action as u64]),
                None => {
                    // Cannot happen after decode; if it did, the walk changed no translation
                    // (kernel-core stage2), so the capability's new record is merely stale.
                    let error = abi::KernelError::InvalidArgument { index: 1 };
                    kernel.system.set_error(caller, error);
                }
            }
        }
        Effect::Unmap { vspace, ipa, size } => {
            let space = &mut kernel.vspaces[usize::from(vspace)];
            crate::vspace::unmap(space, ipa, size);
            kernel.system.vspaces[usize::from(vspace)].free_tables = space.free_tables;
        }
        Effect::UnmapFrame {
            vspace,
            ipa,
            size,
            pa,
        } => {
            // A frame capability's deletion: only if its recorded leaf still maps that frame
            // (no table is freed, so the VSpace's free count stays).
            if let Some(space) = kernel.vspaces.get_mut(usize::from(vspace)) {
                crate::vspace::unmap_frame(space, ipa, size, pa);
            }
        }
        Effect::WriteProtect { vspace, ipa, len } => {
            let caller = kernel.system.current;
            let next =
                crate::vspace::write_protect(&mut kernel.vspaces[usize::from(vspace)], ipa, len);
            kernel.system.set_result(caller, &[next]);
        }
        Effect::Revoke {
            region,
            first_page,
            pages,
        } => {
            let spaces = &mut *kernel.vspaces;
            kernel
                .system
                .revoke_frames(region, first_page, pages, |vspace, ipa, size, pa| {
                    if let Some(space) = spaces.get_mut(usize::from(vspace)) {
                        crate::vspace::unmap_frame(space, ipa, size, pa);
                    }
                });
        }
        Effect::WaitForInterrupt { tcb } => {
            // The guest's interrupt state is live: its VCPU is the loaded one (it just exited).
            if let Some(vcpu) = kernel.system.tcb(tcb).vcpu {
                ensure_loaded(kernel, vcpu);
                crate::vcpu::wait_for_interrupt(kernel, tcb, vcpu);
            }
        }
        Effect::VcpuInjectIrq {
            vcpu,
            intid,
            priority,
            level,
        } => crate::vcpu::inject(kernel, vcpu, intid, priority, level),
        Effect::MapMmioMarker {
            vspace,
            ipa,
            marker,
        } => {
            let caller = kernel.system.current;
            if let Some(space) = kernel.vspaces.get_mut(usize::from(vspace)) {
                let action = crate::vspace::install_marker(space, ipa, marker);
                kernel.system.vspaces[usize::from(vspace)].free_tables = space.free_tables;
                match action {
                    Some(action) => kernel.system.set_result(caller, &[action as u64]),
                    None => kernel
                        .system
                        .set_error(caller, abi::KernelError::InvalidArgument { index: 0 }),
                }
            }
        }
        Effect::ZapMmioMarkers { vspace, from } => {
            if let Some(space) = kernel.vspaces.get_mut(usize::from(vspace)) {
                let next = crate::vspace::zap_markers(space, from);
                kernel.system.mmio_zapped(vspace, next);
            }
        }
        Effect::ConsoleInputBound => {
            Current::console_enable_input();
            Current::unmask_irq(Current::console_intid());
        }
        Effect::ConsoleInputRead => {
            let mut bytes = [0u8; abi::message::CONSOLE_INPUT_CHUNK];
            let count = kernel.console_input.take(&mut bytes);
            let word = |index: usize| {
                let mut chunk = [0u8; 8];
                chunk.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
                u64::from_le_bytes(chunk)
            };
            let caller = kernel.system.current;
            kernel
                .system
                .set_result(caller, &[count as u64, word(0), word(1), word(2)]);
        }
        Effect::VcpuSetVtimer {
            vcpu,
            enabled,
            priority,
        } => crate::vcpu::set_vtimer(kernel, vcpu, enabled, priority),
        Effect::VcpuListRegisters { vcpu } => crate::vcpu::list_registers(kernel, vcpu),
        Effect::InjectException {
            tcb,
            abort,
            address,
            exit_syndrome,
        } => {
            if let Some(vcpu) = kernel.system.tcb(tcb).vcpu {
                ensure_loaded(kernel, vcpu);
                Current::inject_guest_exception(
                    &mut kernel.system.tcb_mut(tcb).context,
                    abort,
                    address,
                    exit_syndrome,
                );
            }
        }
        Effect::InjectSError { tcb } => {
            if let Some(vcpu) = kernel.system.tcb(tcb).vcpu {
                Current::pend_guest_serror(&mut kernel.vcpus[usize::from(vcpu)]);
            }
        }
        Effect::UnhandledFault { tcb } => {
            let fault = kernel.system.tcb(tcb).fault;
            let name = kernel.thread_name(tcb);
            match fault {
                Some(fault) => kprintln!(
                    "KERNEL: server `{name}` has no fault handler and faulted: {} at pc {:#x}, address {:#x}, syndrome {:#x}",
                    fault.kind.name(),
                    fault.pc,
                    fault.address,
                    fault.syndrome
                ),
                None => kprintln!("KERNEL: server `{name}` faulted with no fault handler"),
            }
            kprintln!("KERNEL: stopping the system (status {STATUS_UNHANDLED_FAULT})");
            Current::system_off(STATUS_UNHANDLED_FAULT);
        }
    }
}

/// The first `len` bytes of the current thread's IPC buffer (answering its call), and `len`
/// bounded to the buffer.
fn ipc_buffer_bytes(kernel: &mut Kernel, len: usize) -> ([u8; IPC_BUFFER_WORDS * 8], usize) {
    let current = kernel.system.current;
    let tcb = kernel.system.tcb(current);
    let mut bytes = [0u8; IPC_BUFFER_WORDS * 8];
    for (index, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&PhysicalIpcBuffers.read_word(tcb, index).to_le_bytes());
    }
    kernel.system.set_result(current, &[]);
    (bytes, len.min(IPC_BUFFER_WORDS * 8))
}

/// Chooses the next thread (idling until one is runnable), installs its VSpace, and returns
/// its context.
fn next_context(kernel: &mut Kernel) -> *mut UserContext {
    let mut next = kernel.system.choose_next();
    while next == NONE {
        Current::wait_for_interrupt();
        let effect = handle_irqs(kernel, false);
        debug_assert!(
            effect == Effect::None,
            "idle: no thread to take an exit from"
        );
        next = kernel.system.choose_next();
    }
    let world = kernel.world;
    let context = install(kernel, next);
    if let Some(vcpu) = world
        && kernel.world == world
        && kernel.maintenance_deferred
    {
        // Re-entering the guest that was already configured (a mode switch checks this
        // itself): a maintenance interrupt deferred meanwhile is let in again.
        crate::vcpu::entering_guest(kernel, vcpu);
    }
    context
}

/// Installs `next`'s VSpace when it differs from the current one, switching between server and
/// guest configuration when that changes too (a guest and a server never share a VSpace, so
/// the check costs nothing on a switch between two servers' IPC beyond the VSpace switch it
/// already needs), and returns its context.
#[inline(always)]
fn install(kernel: &mut Kernel, next: kernel_core::TcbId) -> *mut UserContext {
    let thread = kernel.system.tcb_mut(next);
    let context: *mut UserContext = &mut thread.context;
    if thread.vspace_root != kernel.installed_vspace {
        let (root, vcpu) = (thread.vspace_root, thread.vcpu);
        // Guest VSpaces carry VMIDs with the top bit set (boot.rs): a switch between two
        // servers, the IPC case, decides with one test that no world switch is needed.
        let guest_involved = (root | kernel.installed_vspace) & crate::vspace::GUEST_VMID_BIT != 0;
        kernel.installed_vspace = root;
        Current::switch_vspace(root);
        if guest_involved && vcpu != kernel.world {
            switch_mode(kernel, vcpu);
        }
    }
    context
}

/// One bounded step of resetting the VM of VCPU thread `tcb` (PSCI SYSTEM_RESET through its
/// vmm, which invokes `TcbRestart` with `start` = 0 until the answer says nothing remains, then
/// `TcbResume`). The first step empties the VSpace, revokes every frame lent from the VM's RAM
/// (unmapping it wherever else it is still mapped) and resets the VCPU; every step rebuilds at
/// most [`crate::guest::RESET_CHUNK`] of RAM (zeroed, the image's bytes copied in again); the
/// last one puts the VCPU at the entry point. The caller's result word is the number of bytes
/// still to rebuild. The caller (core) already cancelled the thread's IPC, and the thread stays
/// inactive until it is resumed.
fn reset_vm(kernel: &mut Kernel, tcb: kernel_core::TcbId) {
    let Some(vm) = kernel.system.tcb(tcb).vcpu else {
        return;
    };
    let index = usize::from(vm);
    if kernel.vm_images[index].reset_done == 0 {
        let space = &mut kernel.vspaces[index];
        crate::vspace::clear(space);
        let image = &kernel.vm_images[index];
        let (first_page, pages) = ((image.ram.0 >> 12) as u32, (image.ram.1 >> 12) as u32);
        kernel.system.vspaces[index].free_tables = kernel.vspaces[index].free_tables;
        // Frames of its RAM still mapped in another VSpace are unmapped there (in its own,
        // just emptied, the check finds nothing).
        let spaces = &mut *kernel.vspaces;
        let unmap = |vspace: u16, ipa, size, pa| {
            if let Some(space) = spaces.get_mut(usize::from(vspace)) {
                crate::vspace::unmap_frame(space, ipa, size, pa);
            }
        };
        let region = image.region;
        kernel
            .system
            .revoke_frames(region, first_page, pages, unmap);
        kernel.vcpus[index] = Current::new_vcpu_state();
        if kernel.loaded_vcpu == Some(vm) {
            // The live EL1 and FP registers are the old guest's: load the reset state next time.
            kernel.loaded_vcpu = None;
        }
    }
    let image = &kernel.vm_images[index];
    let (done, entry) = crate::guest::reload_chunk(image, image.reset_done);
    let remaining = image.ram.1 - done;
    kernel.vm_images[index].reset_done = if remaining == 0 { 0 } else { done };
    if remaining == 0 {
        let thread = kernel.system.tcb_mut(tcb);
        thread.context = crate::guest::entry_context(&kernel.vm_images[index]);
        defmt::info!("vm {=u16} reset: entry {=u64:#x}", vm, entry);
    }
    let caller = kernel.system.current;
    kernel.system.set_result(caller, &[remaining]);
}

/// Reconfigures the CPU between servers and guests (the world switch), loading another VCPU's
/// EL1 and FP state only when a different VCPU is to run.
#[inline(never)]
fn switch_mode(kernel: &mut Kernel, vcpu: Option<u16>) {
    if let Some(running) = kernel.world.take() {
        Current::set_guest_mode(false, &mut kernel.vcpus[usize::from(running)]);
    }
    if let Some(vcpu) = vcpu {
        ensure_loaded(kernel, vcpu);
        Current::set_guest_mode(true, &mut kernel.vcpus[usize::from(vcpu)]);
        kernel.world = Some(vcpu);
        crate::vcpu::entering_guest(kernel, vcpu);
    }
}

/// Makes `vcpu`'s EL1 and FP state the live one (called in server mode).
fn ensure_loaded(kernel: &mut Kernel, vcpu: u16) {
    if kernel.loaded_vcpu == Some(vcpu) {
        return;
    }
    let (new, old) = (usize::from(vcpu), kernel.loaded_vcpu.map(usize::from));
    match old {
        Some(old) if old < new => {
            let (low, high) = kernel.vcpus.split_at_mut(new);
            Current::switch_loaded_vcpu(Some(&mut low[old]), &high[0]);
        }
        Some(old) => {
            let (low, high) = kernel.vcpus.split_at_mut(old);
            Current::switch_loaded_vcpu(Some(&mut high[0]), &low[new]);
        }
        None => Current::switch_loaded_vcpu(None, &kernel.vcpus[new]),
    }
    kernel.loaded_vcpu = Some(vcpu);
    if old.is_some() {
        // The VCPU just unloaded may sleep in WFI: its timer is a kernel deadline from now on.
        crate::timers::rearm(kernel);
    }
}

/// Returns to EL0 for the first time.
pub fn enter_first_thread(kernel: &'static mut Kernel) -> ! {
    Current::unmask_irq(Current::timer_intid());
    Current::unmask_irq(kernel_core::vgic::MAINTENANCE_INTID);
    crate::timers::start(kernel);
    let context = next_context(kernel);
    // SAFETY: `context` belongs to the thread whose VSpace `next_context` just installed, and
    // the boot stack holds nothing that is needed after this point.
    unsafe { crate::arch::aarch64::entry::restore_user_context(context) }
}

/// Called by the vectors for an exception taken in the kernel itself: a kernel bug.
#[unsafe(no_mangle)]
extern "C" fn handle_kernel_exception() -> ! {
    let (esr, far) = Current::exception_syndrome();
    let elr: u64;
    // SAFETY: reading ELR_EL2 has no side effect.
    unsafe { core::arch::asm!("mrs {}, elr_el2", out(reg) elr) };
    kprintln!("KERNEL PANIC: exception in the kernel: esr {esr:#x} far {far:#x} elr {elr:#x}");
    Current::system_off(101)
}
