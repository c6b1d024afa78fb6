//! The kernel's decisions (`kernel-core`) driven as the exception entry drives them, from a
//! freshly booted system: any sequence of system calls with any registers (capability
//! invocations are `Call`s on non-endpoint capabilities, so every invocation label goes
//! through `invocation::decode` and, when it validates, `System::perform`), faults, guest
//! exits and fast-path MMIO accesses, interrupts and timer ticks. Only the thread the scheduler
//! runs makes the next call, as on the hardware.
//!
//! The system: a supervisor holding every thread's TCB capability and system control; a server
//! that is also the VM's vmm and mmu-server (endpoint, notification, IRQ handler, a 4 MiB RAM
//! range, the VM's VSpace and VCPU, the debug capabilities); a client of it; and the VM's VCPU
//! thread, whose exits go to the server. Checked after every step, besides "never a panic":
//! the running thread is runnable, and every capability in every CNode still names an object
//! that exists (a frame inside the RAM it was carved from): decode validates every index a
//! caller can give.
#![no_main]

use abi::message::IPC_BUFFER_WORDS;
use abi::vm::{VM_EXIT_WORDS, VmExit};
use abi::{FaultInfo, FaultKind, MessageInfo, Rights};
use arbitrary::Arbitrary;
use kernel_core::TcbId;
use kernel_core::cap::{Cap, FrameCap};
use kernel_core::endpoint::{Endpoint, Reply};
use kernel_core::memory::VSpaceInfo;
use kernel_core::mmio::MmioState;
use kernel_core::notification::{IrqLine, Notification};
use kernel_core::queue::NONE;
use kernel_core::stage2::Level;
use kernel_core::system::{Effect, IpcMemory, System};
use kernel_core::tcb::{SlotRange, Tcb};

const SUPERVISOR: TcbId = 0;
const SERVER: TcbId = 1;
const CLIENT: TcbId = 2;
const GUEST: TcbId = 3;
const THREADS: usize = 4;
const SLOTS: u32 = 16;
/// The RAM range the server holds: 4 MiB at 0x4000_0000.
const RAM_FIRST_PAGE: u32 = 0x4_0000;
const RAM_PAGES: u32 = 1024;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Any system call from the running thread (`x7` = `number`).
    Syscall {
        number: u8,
        regs: [Reg; 7],
        fast: bool,
    },
    /// A capability invocation: `Call` on slot `slot` with an invocation label.
    Invoke {
        slot: u8,
        label: u8,
        length: u8,
        caps: u8,
        args: [Reg; 4],
        fast: bool,
    },
    /// The running server thread faults.
    Fault {
        kind: u8,
        pc: u64,
        address: u64,
        syndrome: u64,
    },
    /// The running VCPU thread leaves its guest.
    VmExit {
        words: [u64; VM_EXIT_WORDS],
    },
    /// The running VCPU thread takes a stage-2 data abort the MMIO fast path may handle.
    MmioAccess {
        syndrome: u64,
        far: u64,
        ipa: Reg,
        level: u8,
        descriptor: Descriptor,
    },
    Irq {
        intid: u32,
    },
    Tick {
        slice: u8,
    },
    /// The VCPU's virtual interrupt line asserted (the arch layer wakes a waiting VCPU).
    WakeVcpu,
    /// The arch layer reports how far a marker zap went.
    Zapped {
        next: Reg,
    },
    /// The running thread writes a word of its IPC buffer.
    Buffer {
        index: u8,
        value: u64,
    },
}

/// Register values: mostly small numbers (slots, labels, flags), addresses in the RAM range
/// and page or block sizes, sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Reg {
    Small(u8),
    Page(u16),
    Size(bool),
    Raw(u64),
}

impl Reg {
    fn get(self) -> u64 {
        match self {
            Self::Small(value) => u64::from(value),
            Self::Page(page) => 0x4000_0000 + u64::from(page) * 4096,
            Self::Size(block) => {
                if block {
                    2 << 20
                } else {
                    4096
                }
            }
            Self::Raw(value) => value,
        }
    }
}

/// The descriptor the stage-2 walk found: a marker the kernel asked the arch layer to
/// install earlier, or anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Descriptor {
    Installed(u8),
    Raw(u64),
}

/// Every thread's IPC buffer, found by its address (`0x1000 * (id + 1)`).
struct Buffers([[u64; IPC_BUFFER_WORDS]; THREADS]);

impl Buffers {
    fn of(tcb: &Tcb) -> Option<usize> {
        let id = usize::try_from(tcb.ipc_buffer / 0x1000)
            .ok()?
            .checked_sub(1)?;
        (id < THREADS && tcb.ipc_buffer.is_multiple_of(0x1000)).then_some(id)
    }
}

impl IpcMemory for Buffers {
    fn read_word(&self, tcb: &Tcb, index: usize) -> u64 {
        Self::of(tcb)
            .and_then(|id| self.0[id].get(index).copied())
            .unwrap_or(0)
    }
    fn write_word(&mut self, tcb: &Tcb, index: usize, value: u64) {
        if let Some(word) = Self::of(tcb).and_then(|id| self.0[id].get_mut(index)) {
            *word = value;
        }
    }
}

struct Pools {
    tcbs: Vec<Tcb>,
    endpoints: Vec<Endpoint>,
    notifications: Vec<Notification>,
    replies: Vec<Reply>,
    slots: Vec<Cap>,
    irqs: Vec<IrqLine>,
    vspaces: Vec<VSpaceInfo>,
    mmio: Vec<MmioState>,
}

/// The pools as the boot code would lay them out for the system described above.
fn pools() -> Pools {
    let priorities = [200, 100, 50, 40];
    let mut tcbs: Vec<Tcb> = priorities.iter().map(|&p| Tcb::new(p)).collect();
    let mut slots = vec![Cap::Null; THREADS * SLOTS as usize];
    for (id, tcb) in tcbs.iter_mut().enumerate() {
        tcb.cnode = SlotRange {
            base: id as u32 * SLOTS,
            len: SLOTS,
        };
        tcb.ipc_buffer = 0x1000 * (id as u64 + 1);
        tcb.timeslice_left = 5;
        let base = id * SLOTS as usize;
        slots[base + 1] = Cap::Reply { reply: id as u16 };
        slots[base + 2] = Cap::CNode { owner: id as u16 };
    }
    // Faults of the server and the client go to the supervisor; the guest's exits to the vmm.
    tcbs[usize::from(SERVER)].fault_handler = Some((1, 11));
    tcbs[usize::from(CLIENT)].fault_handler = Some((1, 12));
    tcbs[usize::from(GUEST)].fault_handler = Some((0, 0x33));
    tcbs[usize::from(GUEST)].vcpu = Some(0);
    let endpoint = |ep, badge, rights| Cap::Endpoint {
        ep,
        badge,
        rights,
        generation: 0,
    };
    let all = Rights::READ.union(Rights::WRITE).union(Rights::GRANT);
    let mut put = |id: TcbId, slot: usize, cap: Cap| {
        slots[usize::from(id) * SLOTS as usize + slot] = cap;
    };
    put(SUPERVISOR, 3, endpoint(1, 0, Rights::READ));
    put(SUPERVISOR, 4, Cap::Tcb { tcb: SERVER });
    put(SUPERVISOR, 5, Cap::Tcb { tcb: CLIENT });
    put(SUPERVISOR, 6, Cap::Tcb { tcb: GUEST });
    put(SUPERVISOR, 7, Cap::SystemControl);
    put(SUPERVISOR, 8, Cap::DebugConsole);
    put(SERVER, 3, endpoint(0, 0, Rights::READ));
    put(
        SERVER,
        4,
        Cap::Notification {
            ntfn: 0,
            badge: 0,
            rights: Rights::READ,
        },
    );
    put(SERVER, 5, Cap::IrqHandler { irq: 0 });
    put(
        SERVER,
        6,
        Cap::Frame(FrameCap::new(0, RAM_FIRST_PAGE, RAM_PAGES, false)),
    );
    put(SERVER, 7, Cap::VSpace { vspace: 0 });
    put(SERVER, 8, Cap::Vcpu { vcpu: 0 });
    put(SERVER, 9, Cap::DebugInput);
    put(SERVER, 10, Cap::DebugLog);
    put(SERVER, 11, endpoint(0, 0x44, all));
    put(SERVER, 12, Cap::Tcb { tcb: GUEST });
    put(SERVER, 13, Cap::Null);
    put(
        CLIENT,
        3,
        endpoint(0, 102, Rights::WRITE.union(Rights::GRANT)),
    );
    put(
        CLIENT,
        4,
        Cap::Notification {
            ntfn: 0,
            badge: 4,
            rights: Rights::WRITE,
        },
    );
    put(CLIENT, 5, endpoint(1, 99, Rights::WRITE));
    Pools {
        tcbs,
        endpoints: vec![Endpoint::new(Some(SERVER)), Endpoint::new(Some(SUPERVISOR))],
        notifications: vec![Notification::default()],
        replies: vec![Reply::default(); THREADS],
        slots,
        irqs: vec![IrqLine {
            intid: 33,
            notification: 0,
            badge: 0x80,
        }],
        vspaces: vec![VSpaceInfo { free_tables: 16 }],
        mmio: vec![MmioState::new(true)],
    }
}

libfuzzer_sys::fuzz_target!(|ops: Vec<Op>| {
    let mut pools = pools();
    let mut system = System::new(
        &mut pools.tcbs,
        &mut pools.endpoints,
        &mut pools.notifications,
        &mut pools.replies,
        &mut pools.slots,
        &mut pools.irqs,
    );
    system.vspaces = &mut pools.vspaces;
    system.mmio = &mut pools.mmio;
    for id in 0..THREADS as TcbId {
        system.make_runnable(id);
    }
    system.choose_next();
    let mut buffers = Buffers([[0; IPC_BUFFER_WORDS]; THREADS]);
    let mut markers = Vec::new();
    for op in ops {
        let effect = step(&mut system, &mut buffers, &markers, op);
        match effect {
            Effect::SystemOff { .. } | Effect::UnhandledFault { .. } => return,
            Effect::MapMmioMarker { marker, .. } => markers.push(marker),
            _ => {}
        }
        system.choose_next();
        check(&system);
    }
});

/// One entry into the kernel.
fn step(system: &mut System<'_>, buffers: &mut Buffers, markers: &[u64], op: Op) -> Effect {
    let me = system.current;
    let running = me != NONE;
    let vcpu = running && system.tcb(me).vcpu.is_some();
    match op {
        Op::Syscall { number, regs, fast } if running && !vcpu => {
            let context = &mut system.tcb_mut(me).context;
            for (index, reg) in regs.iter().enumerate() {
                context.set_x(index, reg.get());
            }
            system.dispatch_syscall(buffers, u64::from(number % 12), fast)
        }
        Op::Invoke {
            slot,
            label,
            length,
            caps,
            args,
            fast,
        } if running && !vcpu => {
            let info = MessageInfo::new(
                u64::from(label % 26),
                u64::from(caps % 3),
                u64::from(length % 8),
            );
            let context = &mut system.tcb_mut(me).context;
            context.set_x(0, u64::from(slot % 18));
            context.set_x(1, info.raw());
            for (index, arg) in args.iter().enumerate() {
                context.set_x(2 + index, arg.get());
            }
            system.dispatch_syscall(buffers, abi::Syscall::Call as u64, fast)
        }
        Op::Fault {
            kind,
            pc,
            address,
            syndrome,
        } if running && !vcpu => {
            let kind = FaultKind::from_raw(u64::from(kind % 8)).unwrap_or(FaultKind::Unknown);
            let fault = FaultInfo {
                kind,
                pc,
                address,
                syndrome,
            };
            system.handle_fault(buffers, fault)
        }
        Op::VmExit { mut words } if vcpu => {
            words[0] %= 8;
            match VmExit::from_words(words) {
                Some(exit) => system.handle_vm_exit(buffers, exit),
                None => Effect::None,
            }
        }
        Op::MmioAccess {
            syndrome,
            far,
            ipa,
            level,
            descriptor,
        } if vcpu => {
            let level = [Level::One, Level::Two, Level::Three][usize::from(level % 3)];
            let descriptor = match descriptor {
                Descriptor::Installed(index) if !markers.is_empty() => {
                    markers[usize::from(index) % markers.len()]
                }
                Descriptor::Installed(raw) => u64::from(raw),
                Descriptor::Raw(raw) => raw,
            };
            let _ = system.mmio_fastpath(buffers, syndrome, far, ipa.get(), (level, descriptor));
            Effect::None
        }
        Op::Irq { intid } => {
            let intid = if intid % 2 == 0 { 33 } else { intid };
            let _ = system.irq_fired(intid);
            Effect::None
        }
        Op::Tick { slice } => {
            system.tick(u32::from(slice % 8));
            Effect::None
        }
        Op::WakeVcpu => {
            let _ = system.wake_vcpu(GUEST);
            Effect::None
        }
        Op::Zapped { next } => {
            let _ = system.mmio_zapped(0, next.get());
            Effect::None
        }
        Op::Buffer { index, value } if running => {
            buffers.write_word(system.tcb(me), usize::from(index) % IPC_BUFFER_WORDS, value);
            Effect::None
        }
        _ => Effect::None,
    }
}

/// What no sequence of calls may break.
fn check(system: &System<'_>) {
    if system.current != NONE {
        assert!(
            system.tcb(system.current).state.is_runnable(),
            "thread {} runs in state {:?}",
            system.current,
            system.tcb(system.current).state
        );
    }
    let threads = system.tcbs.len();
    for (slot, cap) in system.slots.iter().enumerate() {
        let valid = match *cap {
            Cap::Null
            | Cap::SystemControl
            | Cap::DebugConsole
            | Cap::DebugLog
            | Cap::DebugInput => true,
            Cap::Endpoint { ep, .. } => usize::from(ep) < system.endpoints.len(),
            Cap::Notification { ntfn, .. } => usize::from(ntfn) < system.notifications.len(),
            Cap::Reply { reply } => usize::from(reply) < system.replies.len(),
            Cap::Tcb { tcb } => usize::from(tcb) < threads,
            Cap::CNode { owner } => usize::from(owner) < threads,
            Cap::IrqHandler { irq } => usize::from(irq) < system.irqs.len(),
            Cap::Vcpu { vcpu } => usize::from(vcpu) < system.mmio.len(),
            Cap::VSpace { vspace } => usize::from(vspace) < system.vspaces.len(),
            Cap::Frame(frame) => {
                frame.region == 0
                    && frame.first_page >= RAM_FIRST_PAGE
                    && u64::from(frame.first_page) + u64::from(frame.pages)
                        <= u64::from(RAM_FIRST_PAGE + RAM_PAGES)
            }
        };
        assert!(valid, "slot {slot} holds {cap:?}");
    }
}
