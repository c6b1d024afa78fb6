//! The MMIO fast path in a whole system: the vmm sets a route on its VCPU capability, the
//! mmu-server's `VSpaceMapMmio` yields the marker, a guest access on it goes from the VCPU thread
//! straight to the device server, whose reply completes the load or store; a device server
//! restarted or downed meanwhile makes the guest run the access again, into the slow path.

use super::{
    CLIENT, EP, MockMemory, NTFN, OTHER, SERVER, error_of, invoke, message, pools, put_cap,
    received, run_as, syscall, system,
};
use crate::cap::Cap;
use crate::memory::VSpaceInfo;
use crate::mmio::{GENERATION_MASK, MmioState, esr};
use crate::stage2::{IPA_LIMIT, Level};
use crate::system::{Effect, MmioOutcome, System};
use crate::tcb::{PC, SP, ThreadState};
use abi::InvocationLabel::{
    VSpaceMapMmio, VSpaceMmioUpdate, VcpuClearMmioRoute, VcpuSetDoorbell, VcpuSetMmioRoute,
};
use abi::mmio::{MarkerAction, REPLY_BUS_ERROR, REPLY_DONE};
use abi::{FaultKind, KernelError, Rights, Syscall};

/// The device server: receives on endpoint 0.
const DEVICE: crate::TcbId = SERVER;
/// The VCPU thread of VM 0.
const GUEST: crate::TcbId = CLIENT;
/// The vmm (and, holding the VSpace capability too, the mmu-server): endpoint 0 with badge 102.
const VMM: crate::TcbId = OTHER;
const VCPU_SLOT: u64 = 6;
const VSPACE_SLOT: u64 = 7;
const READ_ONLY_EP: u64 = 8;
const BASE: u64 = 0x0900_0000;
const SIZE: u64 = 0x2000;
const GUEST_PC: u64 = 0x4008_0000;
const FAR: u64 = 0xFFFF_8000_1000_0018;
const BADGE: u64 = 102;

fn prepare(system: &mut System<'_>) {
    put_cap(system, VMM, VCPU_SLOT, Cap::Vcpu { vcpu: 0 });
    put_cap(system, VMM, VSPACE_SLOT, Cap::VSpace { vspace: 0 });
    put_cap(
        system,
        VMM,
        READ_ONLY_EP,
        Cap::Endpoint {
            ep: 0,
            badge: 0,
            rights: Rights::READ,
            generation: 0,
        },
    );
    let guest = system.tcb_mut(GUEST);
    guest.vcpu = Some(0);
    guest.context.regs[PC] = GUEST_PC;
    for register in 0..31 {
        guest.context.regs[register] = 0x100 + register as u64;
    }
    guest.context.regs[SP] = 0x5555;
}

/// Runs `label` on the vmm's capability in `slot`; the effect, or the error it was answered.
fn vmm(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    slot: u64,
    label: abi::InvocationLabel,
    args: [u64; 4],
) -> Result<Effect, KernelError> {
    let effect = invoke(system, memory, VMM, slot, label, args);
    error_of(system, VMM).map_or(Ok(effect), Err)
}

fn set_route(system: &mut System<'_>, memory: &mut MockMemory) {
    let args = [0, EP, BASE, SIZE];
    assert_eq!(
        vmm(system, memory, VCPU_SLOT, VcpuSetMmioRoute, args),
        Ok(Effect::None)
    );
}

/// The marker the mmu-server's `VSpaceMapMmio` asks the kernel to install for `ipa`.
fn map_mmio(system: &mut System<'_>, memory: &mut MockMemory, ipa: u64) -> u64 {
    match vmm(system, memory, VSPACE_SLOT, VSpaceMapMmio, [ipa, 0, 0, 0]) {
        Ok(Effect::MapMmioMarker {
            vspace: 0,
            ipa: page,
            marker,
        }) => {
            assert_eq!(page, ipa & !0xFFF);
            marker
        }
        other => panic!("VSpaceMapMmio answered {other:?}"),
    }
}

/// A lower-EL level-3 translation fault with a valid syndrome.
fn abort(sas: u64, sse: bool, srt: u64, sf: bool, write: bool) -> u64 {
    (esr::EC_DATA_ABORT_LOWER << esr::EC_SHIFT)
        | esr::IL
        | esr::ISV
        | (sas << esr::SAS_SHIFT)
        | if sse { esr::SSE } else { 0 }
        | (srt << esr::SRT_SHIFT)
        | if sf { esr::SF } else { 0 }
        | if write { esr::WNR } else { 0 }
        | esr::DFSC_TRANSLATION_L3
}

/// The guest runs and takes stage-2 abort `syndrome` at `ipa`, where the walk found `marker`.
fn guest_access(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    syndrome: u64,
    ipa: u64,
    marker: u64,
) -> MmioOutcome {
    run_as(system, GUEST);
    let outcome = system.mmio_fastpath(memory, syndrome, FAR, ipa, (Level::Three, marker));
    system.choose_next();
    outcome
}

fn device_receives(system: &mut System<'_>, memory: &mut MockMemory) {
    syscall(
        system,
        memory,
        DEVICE,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
}

fn device_replies(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    label: u64,
    value: u64,
) -> Effect {
    syscall(
        system,
        memory,
        DEVICE,
        Syscall::ReplyRecv,
        &[EP, message(label, 1), value, 0, 0, 0, abi::REPLY_SLOT],
        true,
    )
}

macro_rules! fixture {
    ($pools:ident, $memory:ident, $system:ident) => {
        let mut $pools = pools(&[100, 50, 40]);
        let mut $memory = MockMemory::default();
        let mut states = [MmioState::new(true)];
        let mut vspaces = [VSpaceInfo { free_tables: 8 }];
        let mut $system = system(&mut $pools);
        $system.mmio = &mut states;
        $system.vspaces = &mut vspaces;
        prepare(&mut $system);
    };
}

#[test]
fn a_guest_read_goes_straight_to_the_device_server_and_its_reply_completes_the_load() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let marker = map_mmio(&mut system, &mut memory, BASE + 0x1018);
    device_receives(&mut system, &mut memory);

    // ldr w5, [x?] at BASE + 0x1018.
    let read = abort(2, false, 5, false, false);
    let outcome = guest_access(&mut system, &mut memory, read, BASE + 0x1018, marker);
    assert_eq!(outcome, MmioOutcome::Handled);
    assert_eq!(system.current, DEVICE);
    let (badge, info, words) = received(&system, DEVICE);
    assert_eq!(badge, BADGE, "the route's badge");
    assert_eq!(info.label(), FaultKind::Mmio as u64);
    assert_eq!(info.length(), 4);
    assert!(!info.is_error());
    assert_eq!(words, [0x1018, 4, 0, 0], "offset, width, no value, read");
    assert!(matches!(
        system.tcb(GUEST).state,
        ThreadState::BlockedOnReply { .. }
    ));
    assert_eq!(
        system.tcb(GUEST).fault.map(|f| f.kind),
        Some(FaultKind::Mmio)
    );

    let effect = device_replies(&mut system, &mut memory, REPLY_DONE, 0xFFFF_FFFF_1234_5678);
    assert_eq!(effect, Effect::None);
    let guest = system.tcb(GUEST);
    assert_eq!(guest.state, ThreadState::Running);
    assert_eq!(guest.context.x(5), 0x1234_5678, "a W register: 32 bits");
    assert_eq!(guest.context.regs[PC], GUEST_PC + 4);
    for register in (0..31).filter(|r| *r != 5) {
        assert_eq!(
            guest.context.x(register),
            0x100 + register as u64,
            "x{register}"
        );
    }
    assert_eq!((guest.fault, guest.mmio), (None, None));
    assert!(matches!(
        system.tcb(DEVICE).state,
        ThreadState::BlockedOnReceive { ep: 0, .. }
    ));
}

#[test]
fn loads_are_extended_as_the_instruction_asks_and_xzr_takes_nothing() {
    for (syndrome, register, expected) in [
        // ldrsb x3: sign-extended to 64 bits.
        (abort(0, true, 3, true, false), 3, 0xFFFF_FFFF_FFFF_FF80),
        // ldrsh w3: sign-extended to 32 bits, upper half clear.
        (abort(1, true, 3, false, false), 3, 0xFFFF_FF80),
        // ldr x3: all 64 bits.
        (abort(3, false, 3, true, false), 3, 0x8000_0000_0000_FF80),
    ] {
        fixture!(pools, memory, system);
        set_route(&mut system, &mut memory);
        let marker = map_mmio(&mut system, &mut memory, BASE);
        device_receives(&mut system, &mut memory);
        guest_access(&mut system, &mut memory, syndrome, BASE, marker);
        device_replies(&mut system, &mut memory, REPLY_DONE, 0x8000_0000_0000_FF80);
        assert_eq!(system.tcb(GUEST).context.x(register), expected);
        assert_eq!(system.tcb(GUEST).context.regs[PC], GUEST_PC + 4);
    }
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let marker = map_mmio(&mut system, &mut memory, BASE);
    device_receives(&mut system, &mut memory);
    let before = system.tcb(GUEST).context;
    guest_access(
        &mut system,
        &mut memory,
        abort(3, false, 31, true, false),
        BASE,
        marker,
    );
    device_replies(&mut system, &mut memory, REPLY_DONE, 0x1234);
    let mut expected = before;
    expected.regs[PC] = GUEST_PC + 4;
    assert_eq!(
        system.tcb(GUEST).context,
        expected,
        "xzr (and SP) untouched"
    );
}

#[test]
fn a_write_waits_for_a_busy_device_server_and_steps_the_guest_when_answered() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let marker = map_mmio(&mut system, &mut memory, BASE + 0x40);
    // The device server is not receiving: the VCPU thread queues behind it.
    let write = abort(1, false, 7, false, true);
    let outcome = guest_access(&mut system, &mut memory, write, BASE + 0x40, marker);
    assert_eq!(outcome, MmioOutcome::Handled);
    assert!(matches!(
        system.tcb(GUEST).state,
        ThreadState::BlockedOnSend { ep: 0, .. }
    ));
    device_receives(&mut system, &mut memory);
    let (badge, info, words) = received(&system, DEVICE);
    assert_eq!((badge, info.label()), (BADGE, FaultKind::Mmio as u64));
    assert_eq!(
        words,
        [0x40, 2, 0x107, 1],
        "x7 = 0x107, a halfword, a write"
    );
    let before = system.tcb(GUEST).context;
    device_replies(&mut system, &mut memory, REPLY_DONE, 0xFFFF);
    let mut expected = before;
    expected.regs[PC] = GUEST_PC + 4;
    assert_eq!(
        system.tcb(GUEST).context,
        expected,
        "a store writes no register"
    );
    assert_eq!(system.tcb(GUEST).state, ThreadState::Running);
}

#[test]
fn a_bus_error_is_injected_as_an_abort_at_the_faulting_address() {
    for (label, error_bit) in [(REPLY_BUS_ERROR, false), (77, false), (REPLY_DONE, true)] {
        fixture!(pools, memory, system);
        set_route(&mut system, &mut memory);
        let marker = map_mmio(&mut system, &mut memory, BASE);
        device_receives(&mut system, &mut memory);
        let read = abort(2, false, 1, false, false);
        guest_access(&mut system, &mut memory, read, BASE, marker);
        let info = if error_bit {
            abi::MessageInfo::error(label, 0).raw()
        } else {
            message(label, 0)
        };
        let effect = syscall(
            &mut system,
            &mut memory,
            DEVICE,
            Syscall::ReplyRecv,
            &[EP, info, 0x55, 0, 0, 0, abi::REPLY_SLOT],
            true,
        );
        assert_eq!(
            effect,
            Effect::InjectException {
                tcb: GUEST,
                abort: true,
                address: FAR,
                exit_syndrome: read,
            },
            "label {label} error {error_bit}"
        );
        let guest = system.tcb(GUEST);
        assert_eq!(
            guest.context.regs[PC], GUEST_PC,
            "the abort is taken at the access"
        );
        assert_eq!(guest.context.x(1), 0x101, "no value loaded");
        assert_eq!(guest.state, ThreadState::Running);
    }
}

#[test]
fn a_doorbell_write_signals_and_the_guest_runs_on_while_other_accesses_still_call() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let args = [0, 0x50, NTFN, 0];
    assert_eq!(
        vmm(&mut system, &mut memory, VCPU_SLOT, VcpuSetDoorbell, args),
        Ok(Effect::None)
    );
    let marker = map_mmio(&mut system, &mut memory, BASE + 0x50);
    let write = abort(2, false, 2, false, true);
    let outcome = guest_access(&mut system, &mut memory, write, BASE + 0x50, marker);
    assert_eq!(outcome, MmioOutcome::Handled);
    assert_eq!(
        system.notifications[0].word,
        1 << VMM,
        "the vmm's capability's badge"
    );
    let guest = system.tcb(GUEST);
    assert_eq!(guest.state, ThreadState::Running);
    assert_eq!(guest.context.regs[PC], GUEST_PC + 4);
    assert_eq!(guest.fault, None);
    assert_eq!(
        system.endpoints[0].state,
        crate::endpoint::EndpointState::Idle
    );

    let read = abort(2, false, 2, false, false);
    guest_access(&mut system, &mut memory, read, BASE + 0x50, marker);
    assert!(matches!(
        system.tcb(GUEST).state,
        ThreadState::BlockedOnSend { .. }
    ));
}

#[test]
fn a_fallback_changes_nothing() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let marker = map_mmio(&mut system, &mut memory, BASE);
    device_receives(&mut system, &mut memory);
    let read = abort(2, false, 1, false, false);
    let stale = crate::mmio::encode(0, system.mmio[0].generation() - 1);
    for (what, syndrome, found) in [
        ("stale generation", read, stale),
        ("no marker", read, 0),
        ("ISV clear", read & !esr::ISV, marker),
    ] {
        let before = (system.tcb(GUEST).clone(), system.endpoints[0]);
        let outcome = guest_access(&mut system, &mut memory, syndrome, BASE, found);
        assert_eq!(outcome, MmioOutcome::Fallback, "{what}");
        let after = system.tcb(GUEST);
        assert_eq!(after.context, before.0.context, "{what}");
        assert_eq!(
            (after.state, after.fault, after.mmio),
            (ThreadState::Running, None, None)
        );
        assert_eq!(system.endpoints[0].state, before.1.state, "{what}");
        assert_eq!(system.endpoints[0].queue, before.1.queue, "{what}");
    }
    // Not a VCPU thread, or a VM without MMIO state: never the fast path.
    run_as(&mut system, VMM);
    assert_eq!(
        system.mmio_fastpath(&mut memory, read, FAR, BASE, (Level::Three, marker)),
        MmioOutcome::Fallback
    );
    system.tcb_mut(GUEST).vcpu = Some(1);
    assert_eq!(
        guest_access(&mut system, &mut memory, read, BASE, marker),
        MmioOutcome::Fallback
    );
}

#[test]
fn a_device_server_restarted_while_serving_makes_the_guest_run_the_access_again_slowly() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let marker = map_mmio(&mut system, &mut memory, BASE);
    device_receives(&mut system, &mut memory);
    let read = abort(2, false, 1, false, false);
    guest_access(&mut system, &mut memory, read, BASE, marker);
    let before = system.tcb(GUEST).context;
    let generation = system.mmio[0].generation();

    assert_eq!(
        system.restart(DEVICE, true),
        Effect::ResetServer { tcb: DEVICE }
    );
    let guest = system.tcb(GUEST);
    assert_eq!(guest.state, ThreadState::Running, "the call failed");
    assert_eq!(
        guest.context, before,
        "not answered: same PC, same registers"
    );
    assert_eq!((guest.fault, guest.mmio), (None, None));
    assert_eq!(
        system.mmio[0].generation(),
        generation + 1,
        "a VM routed to the restarted server has a new generation"
    );
    // The access runs again: the old marker is stale; even a marker of the new generation
    // misses, since the route still names the server's old generation.
    assert_eq!(
        guest_access(&mut system, &mut memory, read, BASE, marker),
        MmioOutcome::Fallback
    );
    let fresh = map_mmio(&mut system, &mut memory, BASE);
    assert_eq!(
        guest_access(&mut system, &mut memory, read, BASE, fresh),
        MmioOutcome::Fallback
    );
    // The vmm learns of the restart on the slow path (its capability is answered Restarted and
    // refreshed); the route it then sets anew matches again.
    syscall(
        &mut system,
        &mut memory,
        VMM,
        Syscall::Call,
        &[EP, message(1, 0)],
        true,
    );
    assert_eq!(
        error_of(&system, VMM),
        Some(KernelError::Restarted { generation: 1 })
    );
    set_route(&mut system, &mut memory);
    let fresh = map_mmio(&mut system, &mut memory, BASE);
    device_receives(&mut system, &mut memory);
    assert_eq!(
        guest_access(&mut system, &mut memory, read, BASE, fresh),
        MmioOutcome::Handled
    );
    assert_eq!(received(&system, DEVICE).1.label(), FaultKind::Mmio as u64);
}

#[test]
fn a_device_server_downed_while_the_call_is_queued_makes_the_guest_run_the_access_again() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let marker = map_mmio(&mut system, &mut memory, BASE);
    let read = abort(2, false, 1, false, false);
    guest_access(&mut system, &mut memory, read, BASE, marker);
    assert!(matches!(
        system.tcb(GUEST).state,
        ThreadState::BlockedOnSend { .. }
    ));
    let before = system.tcb(GUEST).context;
    system.restart(DEVICE, false);
    assert_eq!(system.tcb(GUEST).state, ThreadState::Running);
    assert_eq!(system.tcb(GUEST).context, before);
    assert_eq!(system.tcb(GUEST).mmio, None);
    // Down for good: even a marker of the new generation falls back.
    let fresh = map_mmio(&mut system, &mut memory, BASE);
    assert_eq!(
        guest_access(&mut system, &mut memory, read, BASE, fresh),
        MmioOutcome::Fallback
    );
}

#[test]
fn a_device_server_receiving_without_a_reply_object_cannot_touch_the_guest_registers() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let marker = map_mmio(&mut system, &mut memory, BASE);
    syscall(
        &mut system,
        &mut memory,
        DEVICE,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, 0],
        true,
    );
    let before = system.tcb(GUEST).context;
    let read = abort(2, false, 1, false, false);
    guest_access(&mut system, &mut memory, read, BASE, marker);
    assert_eq!(received(&system, DEVICE).0, BADGE, "delivered");
    let guest = system.tcb(GUEST);
    assert_eq!(guest.state, ThreadState::Running);
    assert_eq!(
        guest.context, before,
        "no Cancelled written into x1: it runs again"
    );
    assert_eq!((guest.fault, guest.mmio), (None, None));
}

#[test]
fn route_invocations_check_their_arguments_and_change_the_generation() {
    fixture!(pools, memory, system);
    for (args, error) in [
        (
            [16, EP, BASE, SIZE],
            KernelError::RangeError {
                index: 0,
                min: 0,
                max: 15,
            },
        ),
        (
            [0, 9, BASE, SIZE],
            KernelError::InvalidCapability { slot: 9 },
        ),
        (
            [0, NTFN, BASE, SIZE],
            KernelError::WrongObjectType { slot: NTFN },
        ),
        (
            [0, READ_ONLY_EP, BASE, SIZE],
            KernelError::InsufficientRights { slot: READ_ONLY_EP },
        ),
        (
            [0, EP, BASE + 1, SIZE],
            KernelError::InvalidArgument { index: 2 },
        ),
        ([0, EP, BASE, 0], KernelError::InvalidArgument { index: 3 }),
    ] {
        assert_eq!(
            vmm(&mut system, &mut memory, VCPU_SLOT, VcpuSetMmioRoute, args),
            Err(error)
        );
        assert_eq!(system.mmio[0].generation(), 0, "refused: no effect");
    }
    set_route(&mut system, &mut memory);
    let route = *system.mmio[0].route(0).unwrap();
    assert_eq!(
        (
            route.base,
            route.size,
            route.endpoint,
            route.badge,
            route.endpoint_generation
        ),
        (BASE, SIZE, 0, BADGE, 0)
    );
    assert_eq!(system.mmio[0].generation(), 1);
    let overlapping = [1, EP, BASE + 0x1000, SIZE];
    assert_eq!(
        vmm(
            &mut system,
            &mut memory,
            VCPU_SLOT,
            VcpuSetMmioRoute,
            overlapping
        ),
        Err(KernelError::InvalidArgument { index: 2 })
    );

    for (args, error) in [
        (
            [1, 0x50, NTFN, 0],
            KernelError::InvalidArgument { index: 0 },
        ),
        (
            [0, SIZE, NTFN, 0],
            KernelError::InvalidArgument { index: 1 },
        ),
        ([0, 0x50, EP, 0], KernelError::WrongObjectType { slot: EP }),
        ([0, 0x50, 0, 0], KernelError::InvalidCapability { slot: 0 }),
    ] {
        assert_eq!(
            vmm(&mut system, &mut memory, VCPU_SLOT, VcpuSetDoorbell, args),
            Err(error)
        );
    }
    put_cap(
        &mut system,
        VMM,
        9,
        Cap::Notification {
            ntfn: 0,
            badge: 1,
            rights: Rights::READ,
        },
    );
    assert_eq!(
        vmm(
            &mut system,
            &mut memory,
            VCPU_SLOT,
            VcpuSetDoorbell,
            [0, 0x50, 9, 0]
        ),
        Err(KernelError::InsufficientRights { slot: 9 })
    );
    assert_eq!(system.mmio[0].route(0).unwrap().doorbell, None);

    assert_eq!(
        vmm(
            &mut system,
            &mut memory,
            VCPU_SLOT,
            VcpuClearMmioRoute,
            [16, 0, 0, 0]
        ),
        Err(KernelError::RangeError {
            index: 0,
            min: 0,
            max: 15
        })
    );
    assert_eq!(
        vmm(
            &mut system,
            &mut memory,
            VCPU_SLOT,
            VcpuClearMmioRoute,
            [0, 0, 0, 0]
        ),
        Ok(Effect::None)
    );
    assert_eq!(system.mmio[0].route(0), None);
    assert_eq!(system.mmio[0].generation(), 2);

    // The operations belong to their capabilities, and to VMs that have MMIO state.
    let label = VcpuSetMmioRoute as u64;
    assert_eq!(
        vmm(
            &mut system,
            &mut memory,
            VSPACE_SLOT,
            VcpuSetMmioRoute,
            [0, EP, BASE, SIZE]
        ),
        Err(KernelError::IllegalOperation { label })
    );
    let label = VSpaceMapMmio as u64;
    assert_eq!(
        vmm(
            &mut system,
            &mut memory,
            VCPU_SLOT,
            VSpaceMapMmio,
            [BASE, 0, 0, 0]
        ),
        Err(KernelError::IllegalOperation { label })
    );
    put_cap(&mut system, VMM, VCPU_SLOT, Cap::Vcpu { vcpu: 1 });
    let label = VcpuSetMmioRoute as u64;
    assert_eq!(
        vmm(
            &mut system,
            &mut memory,
            VCPU_SLOT,
            VcpuSetMmioRoute,
            [0, EP, BASE, SIZE]
        ),
        Err(KernelError::IllegalOperation { label })
    );
}

#[test]
fn markers_are_refused_without_a_route_during_an_update_with_markers_off_or_without_tables() {
    fixture!(pools, memory, system);
    let map = |system: &mut System<'_>, memory: &mut MockMemory, ipa| {
        vmm(system, memory, VSPACE_SLOT, VSpaceMapMmio, [ipa, 0, 0, 0])
    };
    assert_eq!(
        map(&mut system, &mut memory, BASE),
        Err(KernelError::InvalidArgument { index: 0 }),
        "no route"
    );
    set_route(&mut system, &mut memory);
    assert_eq!(
        map(&mut system, &mut memory, BASE + SIZE),
        Err(KernelError::InvalidArgument { index: 0 })
    );
    let marker = map_mmio(&mut system, &mut memory, BASE + SIZE - 1);
    assert_eq!(
        crate::mmio::decode(marker),
        Some(crate::mmio::Marker {
            route: 0,
            generation: 1
        })
    );

    let update = |system: &mut System<'_>, memory: &mut MockMemory, arg| {
        vmm(
            system,
            memory,
            VSPACE_SLOT,
            VSpaceMmioUpdate,
            [arg, 0, 0, 0],
        )
    };
    assert_eq!(update(&mut system, &mut memory, 1), Ok(Effect::None));
    assert_eq!(map(&mut system, &mut memory, BASE), Err(KernelError::Busy));
    assert_eq!(update(&mut system, &mut memory, 0), Ok(Effect::None));
    assert_eq!(
        super::received(&system, VMM).2[0],
        2,
        "answers the generation"
    );
    assert_eq!(
        crate::mmio::decode(map_mmio(&mut system, &mut memory, BASE)).map(|m| m.generation),
        Some(2)
    );

    system.vspaces[0].free_tables = crate::memory::TABLES_PER_MAPPING;
    map_mmio(&mut system, &mut memory, BASE);
    system.vspaces[0].free_tables = crate::memory::TABLES_PER_MAPPING - 1;
    let label = VSpaceMapMmio as u64;
    assert_eq!(
        map(&mut system, &mut memory, BASE),
        Err(KernelError::IllegalOperation { label })
    );
    system.vspaces[0].free_tables = 8;
    system.mmio[0].markers_enabled = false;
    assert_eq!(
        map(&mut system, &mut memory, BASE),
        Err(KernelError::IllegalOperation { label })
    );
}

#[test]
fn update_brackets_are_checked_and_a_wrap_zaps_in_steps_before_markers_return() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    let update = |system: &mut System<'_>, memory: &mut MockMemory, arg| {
        vmm(
            system,
            memory,
            VSPACE_SLOT,
            VSpaceMmioUpdate,
            [arg, 0, 0, 0],
        )
    };
    assert_eq!(
        update(&mut system, &mut memory, 0),
        Err(KernelError::InvalidArgument { index: 0 }),
        "an end with no bracket open"
    );
    assert_eq!(
        update(&mut system, &mut memory, 2),
        Err(KernelError::RangeError {
            index: 0,
            min: 0,
            max: 1
        })
    );
    assert_eq!(system.mmio[0].generation(), 1, "refused: unchanged");

    system.mmio[0] = system.mmio[0].with_generation(GENERATION_MASK);
    assert_eq!(update(&mut system, &mut memory, 1), Ok(Effect::None));
    assert_eq!(
        update(&mut system, &mut memory, 0),
        Ok(Effect::ZapMmioMarkers { vspace: 0, from: 0 }),
        "the generation wrapped: the first zap step"
    );
    // The mmu-server's next install requests drive the zap on, and install nothing.
    assert!(system.mmio_zapped(0, 0x4000_0000));
    let map = |system: &mut System<'_>, memory: &mut MockMemory| {
        vmm(system, memory, VSPACE_SLOT, VSpaceMapMmio, [BASE, 0, 0, 0])
    };
    assert_eq!(
        map(&mut system, &mut memory),
        Ok(Effect::ZapMmioMarkers {
            vspace: 0,
            from: 0x4000_0000
        })
    );
    assert_eq!(received(&system, VMM).2[0], MarkerAction::Zapping as u64);
    let read = abort(2, false, 1, false, false);
    let ancient = crate::mmio::encode(0, 0);
    assert_eq!(
        guest_access(&mut system, &mut memory, read, BASE, ancient),
        MmioOutcome::Fallback,
        "no marker matches during the zap"
    );
    assert!(!system.mmio_zapped(0, IPA_LIMIT));
    assert_eq!(
        crate::mmio::decode(map_mmio(&mut system, &mut memory, BASE)).map(|m| m.generation),
        Some(0)
    );
    assert!(!system.mmio_zapped(7, IPA_LIMIT), "no such VM");
}

#[test]
fn only_the_restart_of_a_server_a_route_names_changes_the_generation() {
    fixture!(pools, memory, system);
    set_route(&mut system, &mut memory);
    system.restart(VMM, true);
    assert_eq!(
        system.mmio[0].generation(),
        1,
        "the vmm serves no route's endpoint"
    );
    system.restart(DEVICE, true);
    assert_eq!(system.mmio[0].generation(), 2);
}

#[test]
fn a_guest_exit_received_without_a_reply_object_is_retried_not_answered_cancelled() {
    use abi::vm::{VmExit, VmExitKind};
    fixture!(pools, memory, system);
    // The "device server" plays the vmm here: it receives exits without a reply object.
    system.tcb_mut(GUEST).fault_handler = Some((0, 0x77));
    syscall(
        &mut system,
        &mut memory,
        DEVICE,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, 0],
        true,
    );
    run_as(&mut system, GUEST);
    // An `hvc` exit is taken with the PC already past the instruction.
    system.tcb_mut(GUEST).context.regs[PC] = GUEST_PC + 4;
    let before = system.tcb(GUEST).context;
    let exit = VmExit {
        kind: VmExitKind::Hypercall,
        pc: GUEST_PC + 4,
        esr: 0x16 << 26,
        words: [0; 6],
    };
    system.handle_vm_exit(&mut memory, exit);
    system.choose_next();
    assert_eq!(received(&system, DEVICE).0, 0x77, "delivered");
    let guest = system.tcb(GUEST);
    assert_eq!(guest.state, ThreadState::Running);
    let mut expected = before;
    expected.regs[PC] = GUEST_PC;
    assert_eq!(guest.context, expected, "back on its hvc, x1 untouched");
    assert_eq!((guest.fault, guest.vm_exit), (None, None));
}
