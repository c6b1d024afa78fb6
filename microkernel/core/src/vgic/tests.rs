use super::*;

fn intid_of(value: u64) -> u32 {
    (value & lr::INTID_MASK) as u32
}

#[test]
fn an_injection_takes_the_first_free_register_with_its_fields() {
    let mut cpu = VgicCpu::new(4);
    let write = cpu.plan_inject(33, 0xA0, true).unwrap();
    assert_eq!(write.index, 0);
    assert_eq!(intid_of(write.value), 33);
    assert_eq!((write.value >> lr::PRIORITY_SHIFT) & 0xFF, 0xA0);
    assert_eq!(write.value & lr::STATE, lr::PENDING);
    assert_ne!(write.value & lr::GROUP1, 0);
    assert_ne!(write.value & lr::EOI, 0, "level: maintenance on completion");
    assert_eq!(write.value & lr::HW, 0);
    cpu.lrs[0] = write.value;
    let edge = cpu.plan_inject(1, 0x80, false).unwrap();
    assert_eq!(edge.index, 1);
    assert_eq!(edge.value & lr::EOI, 0, "edge: no maintenance");
}

#[test]
fn an_interrupt_already_held_is_not_duplicated() {
    let mut cpu = VgicCpu::new(4);
    cpu.lrs[2] = lr_value(40, 0x10, true);
    let again = cpu.plan_inject(40, 0x10, true).unwrap();
    assert_eq!(
        again,
        LrWrite {
            index: 2,
            value: cpu.lrs[2]
        }
    );
    // Active only (the guest acknowledged it): pending again in the same register.
    cpu.lrs[2] = (cpu.lrs[2] & !lr::STATE) | lr::ACTIVE;
    let again = cpu.plan_inject(40, 0x10, true).unwrap();
    assert_eq!(again.index, 2);
    assert_eq!(again.value & lr::STATE, lr::STATE);
}

#[test]
fn full_registers_refuse_and_only_hardware_count_is_used() {
    let mut cpu = VgicCpu::new(2);
    cpu.lrs[0] = lr_value(32, 0, true);
    cpu.lrs[1] = lr_value(34, 0, false);
    // lrs[2] and [3] are free in memory but the hardware has two.
    assert_eq!(
        cpu.plan_inject(35, 0, true),
        Err(KernelError::NoFreeListRegister)
    );
    // A completed level interrupt waits for its maintenance: still not free.
    cpu.lrs[0] &= !lr::STATE;
    assert!(awaits_maintenance(cpu.lrs[0]));
    assert_eq!(
        cpu.plan_inject(35, 0, true),
        Err(KernelError::NoFreeListRegister)
    );
    // A completed edge interrupt is free at once.
    cpu.lrs[1] &= !lr::STATE;
    assert_eq!(cpu.plan_inject(35, 0, true).unwrap().index, 1);
    assert_eq!(VgicCpu::new(9).count as usize, MAX_LIST_REGISTERS);
}

#[test]
fn pending_and_vtimer_state() {
    let mut cpu = VgicCpu::new(4);
    assert!(!cpu.any_pending());
    assert!(
        !cpu.vtimer_armed(),
        "disabled until the guest enables PPI 27"
    );
    cpu.vtimer_enabled = true;
    assert!(cpu.vtimer_armed());
    cpu.lrs[3] = lr_value(VTIMER_INTID, 0, true);
    assert!(cpu.any_pending() && cpu.vtimer_in_flight() && !cpu.vtimer_armed());
    // Acknowledged: active, still in flight, no longer pending.
    cpu.lrs[3] = (cpu.lrs[3] & !lr::STATE) | lr::ACTIVE;
    assert!(!cpu.any_pending() && cpu.vtimer_in_flight());
    // Completed, maintenance not yet taken: still in flight.
    cpu.lrs[3] &= !lr::STATE;
    assert!(cpu.vtimer_in_flight());
    cpu.lrs[3] = 0;
    assert!(cpu.vtimer_armed());
}

#[test]
fn held_intids_are_every_register_not_free() {
    let mut cpu = VgicCpu::new(3);
    assert_eq!(cpu.held_intids(), [0; 4]);
    cpu.lrs[0] = lr_value(48, 0xA0, true); // pending, level
    cpu.lrs[1] = (lr_value(200, 0, false) & !lr::STATE) | lr::ACTIVE; // active, edge
    cpu.lrs[2] = lr_value(7, 0, true) & !lr::STATE; // completed, maintenance to come
    cpu.lrs[3] = lr_value(100, 0, false); // past the hardware's count: not used
    assert_eq!(
        cpu.held_intids(),
        [1 << 7 | 1 << 48, 0, 0, 1 << (200 - 192)]
    );
    // A completed edge interrupt is free, and an INTID past 255 has no bit.
    cpu.lrs[1] &= !lr::STATE;
    cpu.lrs[0] = lr_value(300, 0, false);
    assert_eq!(cpu.held_intids(), [1 << 7, 0, 0, 0]);
}

#[test]
fn inject_arguments_are_checked() {
    assert_eq!(check_inject([33, 0xA0, 1, 0]), Ok((33, 0xA0, true)));
    assert_eq!(check_inject([0, 0, 0, 0]), Ok((0, 0, false)));
    assert_eq!(check_inject([1019, 255, 0, 0]), Ok((1019, 255, false)));
    assert!(matches!(
        check_inject([1020, 0, 0, 0]),
        Err(KernelError::RangeError { index: 0, .. })
    ));
    assert!(matches!(
        check_inject([u64::MAX, 0, 0, 0]),
        Err(KernelError::RangeError { index: 0, .. })
    ));
    assert_eq!(
        check_inject([27, 0, 0, 0]),
        Err(KernelError::InvalidArgument { index: 0 })
    );
    assert_eq!(
        check_inject([25, 0, 0, 0]),
        Err(KernelError::InvalidArgument { index: 0 })
    );
    assert!(matches!(
        check_inject([33, 256, 0, 0]),
        Err(KernelError::RangeError { index: 1, .. })
    ));
    assert_eq!(
        check_inject([33, 0, 2, 0]),
        Err(KernelError::InvalidArgument { index: 2 })
    );
    assert_eq!(check_vtimer([1, 0x80, 0, 0]), Ok((true, 0x80)));
    assert_eq!(check_vtimer([0, 0, 0, 0]), Ok((false, 0)));
    assert!(matches!(
        check_vtimer([2, 0, 0, 0]),
        Err(KernelError::RangeError { index: 0, .. })
    ));
    assert!(matches!(
        check_vtimer([1, 300, 0, 0]),
        Err(KernelError::RangeError { index: 1, .. })
    ));
}
