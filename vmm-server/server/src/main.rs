//! The vmm-server: the monitor of one VM. It receives the VM's exits on `exits:<vm>` (the VCPU
//! thread "faults" there), carries out `vmm_core`'s plan for each over IPC (mmu-server for
//! stage-2 faults and the vendor hypercalls, device servers for MMIO), and replies with the
//! `VmReply` that resumes the guest. docs/VMM.md has the routing table.
//!
//! The exit loop uses raw system calls, not `ipc::serve`: an exit is a fault message (label
//! `FaultKind::VmExit`, nine words: four in registers, five in IPC-buffer words 4..9) and its
//! reply is `VmReply` bits with six words (four in registers, two in IPC-buffer words 4 and 5).
//! The IPC buffer is shared by everything this thread does, logging included (defmt frames and
//! console text travel through it), so the exit's words are read before anything else happens
//! and the reply's buffer words are written last, just before `reply_recv`.
//!
//! Capabilities (manifest names): `exits:<vm>` (required: one VM per vmm, found as described at
//! [`find_vm`]), `mmu` or `mmu-<vm>` (a client endpoint of the mmu-server; without it every
//! stage-2 abort is treated as "not memory", which is only useful for MMIO-only tests), `pl011`
//! and the other `vmm_core::layout::STANDARD_DEVICES` (optional: a missing device's window is a
//! hole), one client capability per virtio-mmio device of the VM, named as its boot-info entry
//! says (`bootdesc::bootinfo::DeviceInfo`, docs/VIRTIO.md), and `system` (system_control, to end
//! the system when the guest powers off).
#![no_std]
#![no_main]

mod interrupts;
mod mmu;
mod routes;

use abi::message::REGISTER_MESSAGE_WORDS;
use abi::vm::{VM_EXIT_WORDS, VmExit};
use abi::{CPtr, FaultKind, MessageInfo, REPLY_SLOT};
use userlib::{ipc_buffer, println, syscall};
use vmm_core::exit::{ExitPlan, Resume, Stage2Answer};
use vmm_core::ratelimit::RateLimit;
use vmm_core::trace::{TraceRecord, TraceRing};
use vmm_core::{DeviceTable, ExitCounters};

userlib::entry!(main);

/// The VM this vmm serves when the manifest calls it so (the test systems do). Any other name
/// is found by scanning the boot info for an `exits:` capability ([`find_vm`]).
const VM_NAME: &str = "guest";
/// Prefix of the exit endpoint's capability name.
const EXITS_PREFIX: &str = "exits:";
/// How many recent exits the trace ring keeps.
const TRACE_DEPTH: usize = 32;

/// The VM's name and the slot of its exit endpoint: `exits:guest` when present, else the first
/// capability whose name starts with `exits:`. A vmm serves exactly one VM: the manifest
/// compiler refuses a second VM naming the same vmm (its exits would never be answered).
fn find_vm() -> Option<(&'static str, CPtr)> {
    if let Some(slot) = userlib::caps::try_cap("exits:guest") {
        return Some((VM_NAME, slot));
    }
    let blob = userlib::caps::bootinfo();
    let (header, mut rest) = bootdesc::bootinfo::header(blob)?;
    for _ in 0..header.caps {
        let (cap, next) =
            postcard::take_from_bytes::<bootdesc::bootinfo::CapName<'_>>(rest).ok()?;
        if let Some(vm) = cap.name.strip_prefix(EXITS_PREFIX) {
            return Some((vm, CPtr::from(cap.slot)));
        }
        rest = next;
    }
    None
}

/// The VM's devices: each standard one as `pl011` or `pl011-<vm>` (a device server per VM),
/// then the virtio-mmio devices the boot info lists for the VM (`[vms.<vm>] devices`), each
/// called through the capability its entry names. A device that cannot be added is reported
/// and its window stays a hole.
fn device_table(vm: &str) -> DeviceTable {
    let mut table = DeviceTable::standard(|name| userlib::caps::try_vm_cap(name, vm));
    let blob = userlib::caps::bootinfo();
    let mut index = None;
    bootdesc::bootinfo::for_each_vm(blob, |info| {
        if info.name == vm {
            index = Some(info.index);
        }
        index.is_none()
    });
    bootdesc::bootinfo::for_each_device(blob, |device| {
        if Some(device.vm) != index {
            return true;
        }
        let added = match userlib::caps::try_cap(device.endpoint) {
            Some(endpoint) => table
                .insert_virtio(
                    device.endpoint,
                    (device.base, device.size),
                    device.intid,
                    endpoint,
                )
                .map_err(|error| match error {
                    vmm_core::devices::DeviceError::Overlaps(_) => "its window is taken",
                    vmm_core::devices::DeviceError::Full => "the device table is full",
                    _ => "its window is not a virtio-mmio transport",
                }),
            None => Err("no capability of that name"),
        };
        if let Err(why) = added {
            println!(
                "vmm: device `{}` at {:#x} left out: {why}",
                device.endpoint, device.base
            );
        }
        true
    });
    table
}

/// Rebuilds the exit just received: words 0..4 from the registers, 4..9 from the IPC buffer.
/// `None` for anything that is not a well-formed exit message.
fn read_exit(info: MessageInfo, registers: [u64; 4]) -> Option<VmExit> {
    if info.is_error() || info.label() != FaultKind::VmExit as u64 || info.length() != VM_EXIT_WORDS
    {
        return None;
    }
    let mut words = [0u64; VM_EXIT_WORDS];
    for (index, word) in words.iter_mut().enumerate() {
        *word = match registers.get(index) {
            Some(&register) => register,
            None => ipc_buffer::read(index),
        };
    }
    VmExit::from_words(words)
}

/// Everything the loop keeps between exits.
struct Monitor {
    /// The VM's manifest name.
    vm: &'static str,
    exits: CPtr,
    mmu: Option<CPtr>,
    devices: DeviceTable,
    counters: ExitCounters,
    trace: TraceRing<TRACE_DEPTH>,
    sequence: u64,
    /// The VM's thread (reset goes through it).
    guest_tcb: CPtr,
    /// Resets so far.
    boots: u64,
    /// The manifest's `resets` for the VM (HV_RESET_LOOP), 0 when not asked.
    resets: u32,
    /// The vGIC model and the VCPU capability that injects its interrupts.
    interrupts: interrupts::Interrupts,
    /// `vcpu:<vm>`: interrupts and MMIO routes.
    vcpu: Option<CPtr>,
    /// Guest-triggered records, rate-limited: exceptions injected, device calls failed, and
    /// the mmu-server's refusals and failures.
    injections: RateLimit,
    device_failures: RateLimit,
    mmu_log: mmu::Log,
    /// `state:<vmm>` (`vmm_core::saved`): what a restarted instance takes over, and where
    /// the next record goes in it.
    page: Option<(&'static mut [u8], ipc::state::Saver)>,
    /// A SYSTEM_RESET is under way (begun, its VCPU not yet resumed).
    resetting: bool,
    /// `boots` or `resetting` changed since the state page was last written.
    record_changed: bool,
}

impl Monitor {
    /// A restarted vmm takes over a running VM from its state page: the vGIC model (put right
    /// against the kernel's list registers), the device lines and the boot count, then asks
    /// every device for its line, since a line may have moved while no vmm listened; a reset
    /// the previous instance died in is finished ([`Monitor::finish_reset`]). A first start
    /// finds no record and starts from reset. Returns whether it took over.
    fn take_over(&mut self) -> bool {
        let Some(saved) = self
            .page
            .as_ref()
            .and_then(|(page, _)| ipc::state::newest_payload(page))
            .and_then(vmm_core::saved::Saved::decode)
        else {
            return false;
        };
        self.boots = saved.boots;
        if saved.resetting {
            // The record is the last boot's, written as the reset began: the model starts over
            // with the new boot (put right against whatever the new boot already has in the
            // list registers), and the reset is finished if its VCPU was not resumed yet.
            let _ = self
                .interrupts
                .take_over(vmm_core::vgic::Vgic::new(), [0; 4]);
            self.finish_reset();
        } else {
            let reconciled = self.interrupts.take_over(saved.vgic, saved.levels);
            if !reconciled {
                println!("vmm: the list registers were not read; the model is kept as saved");
            }
        }
        // A device signal the previous instance took and died on is lost: every virtio line
        // found high is taken as one that may have risen unseen (a spurious edge at worst,
        // which the guest's virtio driver ignores; a lost one would stall it).
        self.device_lines(u64::MAX);
        println!(
            "vmm: took over VM `{}` from the state page (boot {})",
            self.vm,
            self.boots + 1
        );
        true
    }

    /// A reset its previous instance began: done when the VCPU already runs again (it died
    /// after resuming it), else carried on from where the kernel is (`TcbRestart` continues a
    /// rebuild under way; devices are reset again, which is idempotent).
    fn finish_reset(&mut self) {
        let (info, words) =
            syscall::invoke(self.guest_tcb, abi::InvocationLabel::TcbReadState, [0; 4]);
        if !info.is_error() && words[1] != 0 {
            self.resetting = false;
            self.record_changed = true;
            return;
        }
        println!(
            "vmm: finishing the reset of VM `{}` its previous instance began (boot {})",
            self.vm,
            self.boots + 1
        );
        self.resetting = true;
        self.run_reset();
    }

    /// Writes the state page when what it keeps changed; called before every reply, so the
    /// guest never runs on an interrupt state the page does not hold.
    fn persist(&mut self) {
        let changed = self.interrupts.take_changed() | core::mem::take(&mut self.record_changed);
        let Some((page, saver)) = self.page.as_mut().filter(|_| changed) else {
            return;
        };
        let (vgic, levels) = self.interrupts.state();
        let (boots, resetting) = (self.boots, self.resetting);
        if saver
            .save_with(page, |buffer| {
                vmm_core::saved::encode(vgic, &levels, boots, resetting, buffer)
            })
            .is_err()
        {
            // Cannot happen (the record's size is checked at compile time); a vmm restarted
            // after it would start the VM's interrupts from an older record.
            println!("vmm: the state page did not take the record");
        }
    }

    /// Carries out the plan for one exit and returns the reply; `None` when the exit needs no
    /// reply (a reset cancelled it), and never returns on power-off.
    fn handle(&mut self, exit: &VmExit) -> Option<Resume> {
        self.sequence += 1;
        defmt::debug!(
            "exit {=u64}: kind {=u64} pc {=u64:#x} esr {=u64:#x} words {:#x}",
            self.sequence,
            exit.kind as u64,
            exit.pc,
            exit.esr,
            exit.words
        );
        let mut stage2 = None;
        let mut plan = vmm_core::plan(exit);
        let resume = loop {
            defmt::debug!("plan {}", plan);
            plan = match plan {
                ExitPlan::Reply(resume) => break resume,
                ExitPlan::ResolveStage2(fault) => {
                    let answer = match self.mmu {
                        Some(mmu) => mmu::resolve(mmu, &fault, &mut self.mmu_log),
                        None => Stage2Answer::NotMemory,
                    };
                    stage2 = Some(answer);
                    vmm_core::after_stage2(exit, answer, &self.devices)
                }
                ExitPlan::Mmio(mmio) => {
                    let answer = ipc::call::<device_api::Mmio>(
                        &mut userlib::Kernel,
                        mmio.device.endpoint,
                        &mmio.request(),
                    );
                    if let (Some(intid), Ok(Some(level))) =
                        (mmio.device.intid, answer.as_ref().map(|a| a.line()))
                    {
                        self.interrupts.set_line(intid, level);
                    }
                    match answer {
                        Err(ipc::CallError::Restarted { generation }) => {
                            println!(
                                "vmm: device `{}` restarted (generation {generation}) under the access at {:#x}; the guest retries it",
                                mmio.device.name, mmio.access.ipa
                            );
                            routes::refresh(self.vcpu, &self.devices, mmio.device.name);
                        }
                        Err(error) => {
                            if let Some(n) = self.device_failures.note() {
                                println!(
                                    "vmm: device `{}` failed at {:#x}: {}; abort injected (failure {n})",
                                    mmio.device.name, mmio.access.ipa, error
                                );
                            }
                        }
                        Ok(_) => {}
                    }
                    ExitPlan::Reply(vmm_core::after_mmio(&mmio, answer))
                }
                ExitPlan::Mmu(call) => {
                    let answer = match self.mmu {
                        Some(mmu) => mmu::carry_out(mmu, &call.call, &mut self.mmu_log),
                        None => vmm_core::MmuAnswer::Failed,
                    };
                    ExitPlan::Reply(vmm_core::after_mmu(&call, answer))
                }
                ExitPlan::PowerOff { verdict } => {
                    self.counters.count(exit, stage2);
                    self.power_off(verdict)
                }
                ExitPlan::Reset => {
                    self.counters.count(exit, stage2);
                    self.reset();
                    return None;
                }
                ExitPlan::BootCount(conduit) => {
                    ExitPlan::Reply(vmm_core::boot_count_reply(conduit, self.boots))
                }
                ExitPlan::ResetLoop(conduit) => {
                    ExitPlan::Reply(vmm_core::reset_loop_reply(conduit, self.resets))
                }
                ExitPlan::Vgic(access) => {
                    let answer = self.interrupts.access(&access);
                    ExitPlan::Reply(vmm_core::exit::after_vgic(&access, answer))
                }
                ExitPlan::SendSgi { value, then } => {
                    self.interrupts.send_sgi(value);
                    ExitPlan::Reply(then)
                }
                ExitPlan::Maintenance { completed, .. } => {
                    self.interrupts.maintenance(completed);
                    ExitPlan::Reply(Resume::retry(vmm_core::exit::Cause::Interrupt))
                }
            };
        };
        self.counters.count(exit, stage2);
        self.trace.push(TraceRecord {
            sequence: self.sequence,
            kind: exit.kind,
            pc: exit.pc,
            esr: exit.esr,
            word: exit.words[0],
            reply: resume.reply.0,
            cause: resume.cause,
        });
        // One record per injection would let a guest that touches a hole in a loop flood the
        // log and slow the vmm down: rate-limited.
        if resume.injects()
            && let Some(n) = self.injections.note()
        {
            defmt::info!(
                "exit {=u64}: injecting into the guest at pc {=u64:#x} (address {=u64:#x}): {} (injection {=u64})",
                self.sequence,
                exit.pc,
                exit.words[0],
                resume.cause,
                n
            );
        }
        defmt::debug!("resume {}", resume);
        Some(resume)
    }

    /// A device signalled (`vmm-events`, this thread's bound notification; `signalled` is the
    /// OR of the signallers' badges): asks each device with an interrupt line for its level and
    /// lets the vGIC model act on it.
    ///
    /// A virtio device that signalled (its badge `abi::vm::device_event_badge`) and answers
    /// high rose since we last knew its line: on the fast path we see only the level when we
    /// ask, and a fall and a rise in between (the guest's InterruptACK, then the next
    /// completion) would leave the level as we knew it, high, and the edge-triggered INTID
    /// would never fire again. So the model sees it fall and rise (`Interrupts::pulse`).
    ///
    /// A device whose server restarted since our last call answers `Restarted` (a restarted
    /// virtio server signals as soon as it has taken its device over and raised its line): its
    /// route is set again for the new instance and it is asked once more, so that the rise is
    /// not lost.
    fn device_lines(&mut self, signalled: u64) {
        for device in self.devices.iter() {
            let Some(intid) = device.intid else {
                continue;
            };
            let rose_unseen = vmm_core::layout::virtio_transport_of(intid)
                .is_some_and(|n| signalled & abi::vm::device_event_badge(n) != 0);
            let ask = || {
                ipc::call::<device_api::Mmio>(
                    &mut userlib::Kernel,
                    device.endpoint,
                    &device_api::Request::Line,
                )
            };
            let mut answer = ask();
            if let Err(ipc::CallError::Restarted { generation }) = answer {
                println!(
                    "vmm: device `{}` restarted (generation {generation}); asking its line again",
                    device.name
                );
                routes::refresh(self.vcpu, &self.devices, device.name);
                answer = ask();
            }
            match answer.map(|a| a.line()) {
                Ok(Some(true)) if rose_unseen => self.interrupts.pulse(intid),
                Ok(Some(level)) => self.interrupts.set_line(intid, level),
                _ => {}
            }
        }
    }

    /// PSCI SYSTEM_RESET: the kernel rebuilds the VM from its image (RAM, VSpace, VCPU), every
    /// device is reset, and the VM starts again; the exit that asked is cancelled with it, so
    /// nothing is replied. The order of the steps is `vmm_core::reset`'s.
    fn reset(&mut self) {
        self.boots += 1;
        // Written before the first step, so that a successor finishes a reset this instance
        // dies in (docs/VMM.md, "Restart").
        self.resetting = true;
        self.record_changed = true;
        self.persist();
        self.run_reset();
    }

    /// The reset's steps, from wherever the kernel's rebuild stands.
    fn run_reset(&mut self) {
        // The kernel rebuilds the VM a bounded piece per call (answering the bytes of RAM still
        // to do) with the VCPU left down, so a guest that resets in a loop never holds the CPU
        // for long; each call returns here, where interrupts and higher priorities get their
        // turn. The first call stops the VCPU; the devices are reset right after it, before
        // the new boot's RAM exists. Then the VCPU is resumed at its entry point.
        let mut steps = 0u64;
        let mut devices_reset = 0usize;
        loop {
            let (info, words) = syscall::invoke(
                self.guest_tcb,
                abi::InvocationLabel::TcbRestart,
                [0, 0, 0, 0],
            );
            if info.is_error() {
                println!(
                    "vmm: resetting the guest failed (kernel error {}); it stays stopped",
                    info.label()
                );
                self.end_reset();
                return;
            }
            steps += 1;
            if steps == 1 {
                devices_reset = self.reset_devices();
            }
            if words[0] == 0 {
                break;
            }
        }
        // Every device line is low now (their answers said so): the model starts over too.
        self.interrupts.reset();
        self.reset_memory_slot();
        let (info, _) = syscall::invoke(self.guest_tcb, abi::InvocationLabel::TcbResume, [0; 4]);
        if info.is_error() {
            println!(
                "vmm: resuming the reset guest failed (kernel error {}); it stays stopped",
                info.label()
            );
            self.end_reset();
            return;
        }
        self.end_reset();
        defmt::info!("guest reset in {=u64} bounded steps", steps);
        println!(
            "vmm: guest reset (boot {}), {devices_reset} of {} device(s) reset",
            self.boots + 1,
            self.devices.len()
        );
    }

    /// The reset is over (done, or refused by the kernel): nothing for a successor to finish.
    fn end_reset(&mut self) {
        self.resetting = false;
        self.record_changed = true;
    }

    /// Sends `Request::Reset` to every device of the VM and waits for each answer; returns how
    /// many confirmed it. One that did not is reported and keeps whatever state it has.
    fn reset_devices(&mut self) -> usize {
        let mut confirmed = 0;
        for device in self.devices.iter() {
            let answer = ipc::call::<device_api::Mmio>(
                &mut userlib::Kernel,
                device.endpoint,
                &device_api::Request::Reset,
            );
            match vmm_core::reset::device_reset(answer) {
                Ok(()) => confirmed += 1,
                Err(error) => println!(
                    "vmm: device `{}` did not reset: {error}; it keeps its state",
                    device.name
                ),
            }
        }
        confirmed
    }

    /// The mmu-server's view of the VM starts over too: slot 0 (its RAM, as the mmu-server set
    /// it up from its boot info) is set again, which drops dirty-log state, and the alias slot
    /// (HV_RAM_ALIAS) is deleted.
    fn reset_memory_slot(&self) {
        let mut ram = None;
        bootdesc::bootinfo::for_each_vm(userlib::caps::bootinfo(), |vm| {
            if vm.name == self.vm {
                ram = Some((vm.index, vm.ram_base, vm.ram_size));
            }
            ram.is_none()
        });
        let (Some(mmu), Some((region, ipa, len))) = (self.mmu, ram) else {
            return;
        };
        let spec = mmu_api::SlotSpec {
            ipa,
            len,
            region,
            offset: 0,
            flags: mmu_api::SlotFlags {
                read_only: false,
                allow_blocks: true,
            },
        };
        let request = mmu_api::Request::SetSlot { slot: 0, spec };
        if !matches!(
            ipc::call::<mmu_api::Mmu>(&mut userlib::Kernel, mmu, &request),
            Ok(Ok(_))
        ) {
            println!("vmm: the mmu-server did not take the reset memory slot");
        }
        // An alias the guest left (HV_RAM_ALIAS) does not outlive its boot; none is `NoSlot`.
        let alias = mmu_api::Request::DeleteSlot {
            slot: vmm_core::mmu::ALIAS_SLOT,
        };
        if !matches!(
            ipc::call::<mmu_api::Mmu>(&mut userlib::Kernel, mmu, &alias),
            Ok(Ok(_) | Err(mmu_api::MmuError::NoSlot))
        ) {
            println!("vmm: the mmu-server did not drop the RAM alias of the last boot");
        }
    }

    /// PSCI SYSTEM_OFF: the summary lines, then the whole system stops with the verdict as its
    /// exit status (the test systems give the vmm `system_control`).
    fn power_off(&self, verdict: u64) -> ! {
        println!("vmm: guest powered off, verdict {verdict}");
        println!("vmm: exits: {}", self.counters);
        if verdict != 0 {
            for record in self.trace.iter() {
                defmt::info!(
                    "trace {=u64}: kind {=u64} pc {=u64:#x} esr {=u64:#x} word {=u64:#x} reply {=u64:#x} {}",
                    record.sequence,
                    record.kind as u64,
                    record.pc,
                    record.esr,
                    record.word,
                    record.reply,
                    record.cause
                );
            }
        }
        if userlib::caps::try_cap("system").is_some() {
            userlib::system_off(verdict);
        }
        println!("vmm: no `system` capability: the VM stays stopped");
        // The VCPU waits for the reply to its SYSTEM_OFF. Receiving again would cancel that
        // reply and resume the guest after its hypercall (the test guest then spins in WFE at
        // its own priority, starving every lower one, another VM included): suspend the VCPU
        // first, which takes it out of the reply object for good.
        let (info, _) = syscall::invoke(self.guest_tcb, abi::InvocationLabel::TcbSuspend, [0; 4]);
        if info.is_error() {
            println!(
                "vmm: suspending the VCPU failed (kernel error {})",
                info.label()
            );
        }
        loop {
            // Nothing sends here any more (the VCPU is suspended), so this blocks for good
            // without spinning.
            syscall::recv(self.exits, REPLY_SLOT);
        }
    }
}

fn main() -> ! {
    let Some((vm, exits)) = find_vm() else {
        panic!("no `{EXITS_PREFIX}<vm>` capability: the manifest gives this vmm no VM");
    };
    let mut monitor = Monitor {
        vm,
        exits,
        // `mmu`, or `mmu-<vm>` when each VM has its own mmu-server (endpoint names are global).
        mmu: userlib::caps::try_vm_cap("mmu", vm),
        devices: device_table(vm),
        counters: ExitCounters::default(),
        trace: TraceRing::new(),
        sequence: 0,
        guest_tcb: userlib::caps::try_cap_named("tcb:", vm)
            .unwrap_or_else(|| panic!("no `tcb:{vm}` capability")),
        boots: 0,
        resets: 0,
        interrupts: interrupts::Interrupts::new(userlib::caps::try_cap_named("vcpu:", vm)),
        vcpu: userlib::caps::try_cap_named("vcpu:", vm),
        injections: RateLimit::new(),
        device_failures: RateLimit::new(),
        mmu_log: mmu::Log::default(),
        // SAFETY: this is a vmm (it holds `exits:<vm>`, found above), into which the manifest
        // compiler maps its state page; this is the only call.
        page: unsafe { userlib::state_page() }.map(|page| {
            let saver = ipc::state::Saver::new(page);
            (page, saver)
        }),
        resetting: false,
        record_changed: true,
    };
    routes::install(monitor.vcpu, &monitor.devices);
    bootdesc::bootinfo::for_each_vm(userlib::caps::bootinfo(), |info| {
        if info.name == vm {
            monitor.resets = info.resets;
        }
        info.name != vm
    });
    println!(
        "vmm: serving VM `{vm}` ({} device(s){})",
        monitor.devices.len(),
        if monitor.mmu.is_some() {
            ""
        } else {
            ", no mmu-server"
        }
    );
    for device in monitor.devices.iter() {
        defmt::info!(
            "device {=str} at {=u64:#x} +{=u64:#x}",
            device.name,
            device.window.base,
            device.window.size
        );
    }
    if !monitor.take_over() {
        // A first start (or no usable record): the model as it is out of reset goes in.
        monitor.persist();
    }
    let (mut word, mut info, mut registers) = syscall::recv(exits, REPLY_SLOT);
    loop {
        // Read the exit before anything else touches the IPC buffer.
        let Some(exit) = read_exit(info, registers) else {
            if info.label() == abi::message::BOUND_NOTIFICATION_LABEL && !info.is_error() {
                // A device signalled that its interrupt line may have changed on its own; the
                // word is the OR of the signallers' badges.
                monitor.device_lines(word);
                monitor.persist();
                (word, info, registers) = syscall::recv(exits, REPLY_SLOT);
                continue;
            }
            if info.is_error() {
                panic!(
                    "receiving on `{EXITS_PREFIX}{vm}` failed (kernel error {})",
                    info.label()
                );
            }
            println!(
                "vmm: ignoring a message that is not a VM exit (label {}, {} words)",
                info.label(),
                info.length()
            );
            (word, info, registers) = syscall::recv(exits, REPLY_SLOT);
            continue;
        };
        let handled = monitor.handle(&exit);
        monitor.persist();
        let Some(resume) = handled else {
            (word, info, registers) = syscall::recv(exits, REPLY_SLOT);
            continue;
        };
        // Last, after every log line and call: the two reply words that go in the buffer.
        let [word4, word5] = resume.buffer_words();
        ipc_buffer::write(REGISTER_MESSAGE_WORDS, word4);
        ipc_buffer::write(REGISTER_MESSAGE_WORDS + 1, word5);
        (word, info, registers) =
            syscall::reply_recv(exits, REPLY_SLOT, resume.info(), resume.registers());
    }
}
