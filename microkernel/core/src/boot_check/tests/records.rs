//! The second pass: each record's fields, its indices, and what it may not share with the
//! records before it.

use super::*;
use abi::layout::{
    ADDRESS_SPACE_END, HEAP_BASE, HEAP_END, REGION_WINDOW_BASE, STACK_LIMIT, STACK_TOP,
};
use abi::platform::{GIC_DISTRIBUTOR, GIC_REDISTRIBUTORS, KERNEL_UART, RAM};

#[test]
fn server_fields_are_checked() {
    let server = |change: fn(&mut Server<'static>)| refused(|r| edit!(r, Server, 1, |s| change(s)));
    let refused_as = |why| at(Kind::Server, 1, why);
    assert_eq!(server(|s| s.priority = 0), refused_as(Why::Priority(0)));
    assert_eq!(server(|s| s.priority = 255), refused_as(Why::Priority(255)));
    let stack_max = (STACK_TOP - STACK_LIMIT) as u32;
    assert_eq!(server(|s| s.stack_bytes = 0), refused_as(Why::Stack(0)));
    assert_eq!(
        server(|s| s.stack_bytes = 0x1800),
        refused_as(Why::Stack(0x1800))
    );
    assert_eq!(
        refused(|r| edit!(r, Server, 1, |s| s.stack_bytes = stack_max + 0x1000)),
        refused_as(Why::Stack(stack_max + 0x1000))
    );
    let heap_max = (HEAP_END - HEAP_BASE) as u32;
    assert_eq!(
        server(|s| s.heap_bytes = 0x800),
        refused_as(Why::Heap(0x800))
    );
    assert_eq!(
        refused(|r| edit!(r, Server, 1, |s| s.heap_bytes = heap_max + 0x1000)),
        refused_as(Why::Heap(heap_max + 0x1000))
    );
    assert_eq!(
        server(|s| s.cnode_slots = 3),
        refused_as(Why::CnodeSlots(3))
    );
    let inject = |count| {
        Some(bootdesc::InjectedFault {
            at: bootdesc::InjectPoint::Call,
            count,
        })
    };
    assert_eq!(
        refused(|r| edit!(r, Server, 1, |s| s.inject_fault = inject(3))),
        refused_as(Why::InjectionOutsideTest)
    );
    let test_system = |r: &mut Vec<Record<'static>>| {
        if let Some(Record::Header(header)) = r.first_mut() {
            header.test_system = true;
        }
    };
    assert_eq!(
        refused(|r| {
            test_system(r);
            edit!(r, Server, 1, |s| s.inject_fault = inject(0))
        }),
        refused_as(Why::InjectionCount)
    );
    assert_eq!(
        checked(|r| {
            test_system(r);
            edit!(r, Server, 1, |s| s.inject_fault = inject(1))
        }),
        Ok(())
    );
    assert_eq!(
        server(|s| s.fault_endpoint = Some(2)),
        refused_as(no_such(Kind::Endpoint, 2, 2))
    );
    assert_eq!(
        server(|s| s.bootinfo = &[0; MAX_BOOTINFO + 1]),
        refused_as(Why::BootInfo {
            bytes: MAX_BOOTINFO + 1
        })
    );
    // The guest's bytes are no ELF.
    let guest = bootdesc::image_refs(&[&server_elf(), &[0x5A; 0x100]])[1];
    assert_eq!(
        refused(|r| edit!(r, Server, 0, |s| s.image = guest)),
        at(
            Kind::Server,
            0,
            Why::BadImage(crate::elf::ElfError::NotAarch64Executable)
        )
    );
    // Every limit is inclusive.
    let fine = |change: fn(&mut Server<'static>)| checked(|r| edit!(r, Server, 1, |s| change(s)));
    assert_eq!(fine(|s| s.priority = 1), Ok(()));
    assert_eq!(fine(|s| s.priority = 254), Ok(()));
    assert_eq!(fine(|s| s.heap_bytes = 0), Ok(()));
    assert_eq!(fine(|s| s.bootinfo = &[0; MAX_BOOTINFO]), Ok(()));
    assert_eq!(
        checked(|r| edit!(r, Server, 1, |s| {
            s.stack_bytes = stack_max;
            s.heap_bytes = heap_max;
        })),
        Ok(())
    );
}

#[test]
fn endpoints_and_notifications_name_existing_servers() {
    assert_eq!(
        refused(|r| edit!(r, Endpoint, 1, |e| e.server = Some(2))),
        at(Kind::Endpoint, 1, no_such(Kind::Server, 2, 2))
    );
    assert_eq!(
        checked(|r| edit!(r, Endpoint, 1, |e| e.server = None)),
        Ok(())
    );
    assert_eq!(
        refused(|r| edit!(r, Notification, 0, |n| n.bound = Some(7))),
        at(Kind::Notification, 0, no_such(Kind::Server, 7, 2))
    );
    let second = |bound| {
        Record::Notification(Notification {
            name: "second",
            bound,
        })
    };
    assert_eq!(
        refused(|r| add(r, second(Some(1)))),
        at(
            Kind::Notification,
            1,
            Why::AlreadyBound {
                server: 1,
                notification: 0
            }
        )
    );
    assert_eq!(checked(|r| add(r, second(Some(0)))), Ok(()));
}

#[test]
fn regions_are_page_sized_and_devices_stay_off_the_kernels() {
    for size in [0, 0x1800] {
        assert_eq!(
            refused(|r| edit!(r, Region, 1, |g| g.size = size)),
            at(Kind::Region, 1, Why::RegionSize(size))
        );
    }
    let device = |base: u64, size: u64| {
        checked(|r| {
            edit!(r, Region, 0, |g| {
                g.kind = RegionKind::Device { phys_base: base };
                g.size = size;
            })
        })
        .map_err(|error| error.why)
    };
    assert_eq!(
        device(0x0901_0800, 0x1000),
        Err(Why::DeviceUnaligned { base: 0x0901_0800 })
    );
    for window in [GIC_DISTRIBUTOR, GIC_REDISTRIBUTORS, KERNEL_UART, RAM] {
        // The window's first page and its last.
        for base in [window.base, window.end() - 0x1000] {
            assert_eq!(
                device(base, 0x1000),
                Err(Why::DeviceOverKernel {
                    base,
                    end: base + 0x1000,
                    window
                }),
                "{}",
                window.name
            );
        }
    }
    assert_eq!(
        device(RAM.end(), 0x1000),
        Err(Why::DeviceAboveRam {
            base: RAM.end(),
            end: RAM.end() + 0x1000
        })
    );
    // A region that wraps ends at the top of the address space.
    let top = !0xFFFu64;
    assert_eq!(
        device(top, 0x2000),
        Err(Why::DeviceAboveRam {
            base: top,
            end: u64::MAX
        })
    );
    // A region reaching onto the distributor's first page from below.
    assert_eq!(
        device(GIC_DISTRIBUTOR.base - 0x1000, 0x2000),
        Err(Why::DeviceOverKernel {
            base: GIC_DISTRIBUTOR.base - 0x1000,
            end: GIC_DISTRIBUTOR.base + 0x1000,
            window: GIC_DISTRIBUTOR
        })
    );
    // Right next to the kernel's devices, and the last page below RAM, are free.
    assert_eq!(device(GIC_DISTRIBUTOR.base - 0x1000, 0x1000), Ok(()));
    assert_eq!(device(GIC_DISTRIBUTOR.end(), 0x1000), Ok(()));
    assert_eq!(device(KERNEL_UART.end(), 0x1000), Ok(()));
    assert_eq!(device(RAM.base - 0x1000, 0x1000), Ok(()));
}

#[test]
fn the_kernels_interrupts_and_non_interrupts_are_refused() {
    let irq = |intid| checked(|r| edit!(r, Irq, 0, |i| i.intid = intid));
    for owned in KERNEL_IRQS {
        assert_eq!(
            irq(owned.intid),
            Err(at(
                Kind::Irq,
                0,
                Why::KernelOwned {
                    intid: owned.intid,
                    what: owned.what
                }
            ))
        );
    }
    for intid in [0, 15, 1020, 1023, u32::MAX] {
        assert_eq!(
            irq(intid),
            Err(at(Kind::Irq, 0, Why::NotAnInterrupt { intid })),
            "{intid}"
        );
    }
    for intid in [16, 24, 28, 31, 32, 34, 1019] {
        assert_eq!(irq(intid), Ok(()), "{intid}");
    }
    assert_eq!(
        checked(|r| edit!(r, Irq, 0, |i| i.notification = 1)),
        Err(at(Kind::Irq, 0, no_such(Kind::Notification, 1, 1)))
    );
    let second = |intid| {
        Record::Irq(Irq {
            name: "second",
            intid,
            notification: 0,
            badge: 2,
        })
    };
    assert_eq!(
        refused(|r| add(r, second(34))),
        at(
            Kind::Irq,
            1,
            Why::DuplicateIrq {
                intid: 34,
                first: 0
            }
        )
    );
    assert_eq!(checked(|r| add(r, second(35))), Ok(()));
}

#[test]
fn caps_go_to_free_slots_of_existing_servers() {
    // Cap 8 is server 1's first (slot 3).
    let cap = |change: fn(&mut Cap)| checked(|r| edit!(r, Cap, 8, |c| change(c)));
    assert_eq!(
        cap(|c| c.server = 2),
        Err(at(Kind::Cap, 8, no_such(Kind::Server, 2, 2)))
    );
    for slot in [0, 2, 8, 9, u16::MAX] {
        let mut records = good();
        edit!(records, Cap, 8, |c| c.slot = slot);
        assert_eq!(
            check_payload(&payload_of(&records)),
            Err(at(Kind::Cap, 8, Why::CapSlot { slot, slots: 8 })),
            "{slot}"
        );
    }
    // Cap 8 moved to slot 4, which cap 9 fills next.
    assert_eq!(
        cap(|c| c.slot = 4),
        Err(at(Kind::Cap, 9, Why::SlotTaken { server: 1, slot: 4 }))
    );
    // The same slot number in another server's CNode is another slot.
    assert_eq!(cap(|c| c.slot = 3), Ok(()));
    assert_eq!(
        checked(|r| edit!(r, Cap, 7, |c| c.slot = 3)),
        Err(at(Kind::Cap, 7, Why::SlotTaken { server: 0, slot: 3 }))
    );
}

#[test]
fn every_capability_object_names_an_existing_object() {
    let object = |object| checked(|r| edit!(r, Cap, 8, |c| c.object = object));
    let rights = Rights::READ;
    let cases = [
        (
            CapObject::Endpoint {
                index: 2,
                badge: 0,
                rights,
            },
            no_such(Kind::Endpoint, 2, 2),
        ),
        (
            CapObject::Notification {
                index: 1,
                badge: 0,
                rights,
            },
            no_such(Kind::Notification, 1, 1),
        ),
        (CapObject::Tcb { server: 2 }, no_such(Kind::Server, 2, 2)),
        (CapObject::IrqHandler { irq: 1 }, no_such(Kind::Irq, 1, 1)),
        (CapObject::GuestTcb { vm: 1 }, no_such(Kind::Vm, 1, 1)),
        (CapObject::Vcpu { vm: 1 }, no_such(Kind::Vm, 1, 1)),
        (CapObject::GuestVSpace { vm: 1 }, no_such(Kind::Vm, 1, 1)),
        (
            CapObject::Frame { region: 3, rights },
            no_such(Kind::Region, 3, 3),
        ),
        (
            CapObject::Frame { region: 0, rights },
            Why::FrameOfDevice { region: 0 },
        ),
    ];
    for (bad, why) in cases {
        assert_eq!(object(bad), Err(at(Kind::Cap, 8, why)), "{bad:?}");
    }
    for good in [
        CapObject::Tcb { server: 1 },
        CapObject::IrqHandler { irq: 0 },
        CapObject::Frame { region: 2, rights },
        CapObject::Vcpu { vm: 0 },
    ] {
        assert_eq!(object(good), Ok(()), "{good:?}");
    }
}

#[test]
fn mappings_stay_in_the_region_window() {
    let mapping = |va| checked(|r| edit!(r, Mapping, 0, |m| m.va = va)).map_err(|e| e.why);
    let outside = |va| Err(Why::MappingOutsideWindow { va, size: 0x1000 });
    for va in [
        REGION_WINDOW_BASE - 0x1000,
        REGION_WINDOW_BASE + 0x800,
        ADDRESS_SPACE_END,
        !0xFFFu64,
    ] {
        assert_eq!(mapping(va), outside(va), "{va:#x}");
    }
    assert_eq!(mapping(ADDRESS_SPACE_END - 0x1000), Ok(()));
    assert_eq!(
        checked(|r| edit!(r, Mapping, 1, |m| m.server = 2)),
        Err(at(Kind::Mapping, 1, no_such(Kind::Server, 2, 2)))
    );
    assert_eq!(
        checked(|r| edit!(r, Mapping, 1, |m| m.region = 3)),
        Err(at(Kind::Mapping, 1, no_such(Kind::Region, 3, 3)))
    );
}

#[test]
fn one_servers_mappings_do_not_share_addresses() {
    // Mapping 1 (region 1, two pages) moved onto mapping 0's page, then just after it.
    assert_eq!(
        checked(|r| edit!(r, Mapping, 1, |m| m.va = 0x4000_0000)),
        Err(at(
            Kind::Mapping,
            1,
            Why::MappingOverlaps {
                server: 1,
                other: 0
            }
        ))
    );
    // Overlapping from below: the later record lies lower, its end on the earlier one's page.
    assert_eq!(
        checked(|r| {
            edit!(r, Mapping, 0, |m| m.va = 0x4000_2000);
            edit!(r, Mapping, 1, |m| m.va = 0x4000_1000);
        }),
        Err(at(
            Kind::Mapping,
            1,
            Why::MappingOverlaps {
                server: 1,
                other: 0
            }
        ))
    );
    // Touching is not overlapping.
    assert_eq!(
        checked(|r| {
            edit!(r, Mapping, 0, |m| m.va = 0x4000_2000);
            edit!(r, Mapping, 1, |m| m.va = 0x4000_0000);
        }),
        Ok(())
    );
}

#[test]
fn a_vm_needs_ram_an_entry_inside_it_and_its_exit_endpoint() {
    let vm = |change: fn(&mut Vm<'static>)| checked(|r| edit!(r, Vm, 0, |v| change(v)));
    let refused_as = |why| Err(at(Kind::Vm, 0, why));
    assert_eq!(
        vm(|v| v.ram_region = 0),
        refused_as(Why::VmRamNotRam { region: 0 })
    );
    assert_eq!(
        vm(|v| v.ram_region = 3),
        refused_as(no_such(Kind::Region, 3, 3))
    );
    let end = GUEST_RAM + 0x20_0000;
    assert_eq!(
        vm(|v| v.entry = GUEST_RAM + 0x20_0000),
        refused_as(Why::Load(crate::guest_load::LoadError::EntryOutsideRam {
            entry: end
        }))
    );
    assert_eq!(
        vm(|v| v.x0 = GUEST_RAM - 8),
        refused_as(Why::Load(crate::guest_load::LoadError::X0OutsideRam {
            x0: GUEST_RAM - 8
        }))
    );
    assert_eq!(
        vm(|v| v.ram_base = u64::MAX - 0xFFFF),
        refused_as(Why::Load(crate::guest_load::LoadError::RamWraps))
    );
    assert_eq!(
        vm(|v| v.exit_endpoint = 2),
        refused_as(no_such(Kind::Endpoint, 2, 2))
    );
    assert_eq!(vm(|v| v.priority = 0), refused_as(Why::Priority(0)));
    assert_eq!(vm(|v| v.priority = 255), refused_as(Why::Priority(255)));
    assert_eq!(vm(|v| v.x0 = GUEST_RAM + 0x1F_FFF8), Ok(()));
}

#[test]
fn segments_lie_in_their_vms_ram_in_order() {
    use crate::guest_load::LoadError;
    let segment = |n, change: fn(&mut VmSegment)| {
        checked(|r| edit!(r, VmSegment, n, |s| change(s))).map_err(|e| (e.at, e.why))
    };
    let at1 = At::of(Kind::VmSegment, 1);
    assert_eq!(
        segment(1, |s| s.vm = 1),
        Err((at1, no_such(Kind::Vm, 1, 1)))
    );
    assert_eq!(
        segment(1, |s| s.image.offset = 0x10_0000),
        Err((
            at1,
            Why::ImageOutsidePayload {
                offset: 0x10_0000,
                len: 0x100
            }
        ))
    );
    let last = GUEST_RAM + 0x20_0000 - 0x100;
    assert_eq!(
        segment(1, |s| s.ipa = GUEST_RAM + 0x20_0000 - 0x100),
        Ok(())
    );
    assert_eq!(
        segment(1, |s| s.ipa = GUEST_RAM + 0x20_0000 - 0xFF),
        Err((
            at1,
            Why::Load(LoadError::SegmentOutsideRam {
                ipa: last + 1,
                len: 0x100
            })
        ))
    );
    assert_eq!(
        segment(1, |s| s.ipa = GUEST_RAM + 0xFF),
        Err((
            at1,
            Why::Load(LoadError::SegmentOverlaps {
                ipa: GUEST_RAM + 0xFF,
                previous_end: GUEST_RAM + 0x100
            })
        ))
    );
    assert_eq!(segment(1, |s| s.ipa = GUEST_RAM + 0x100), Ok(()));
}

#[test]
fn segments_come_grouped_by_vm_in_vm_order() {
    let second_vm = |r: &mut Vec<Record<'static>>| {
        add(
            r,
            Record::Region(Region {
                name: "ram:second",
                kind: RegionKind::Ram,
                size: 0x20_0000,
            }),
        );
        let Some(Record::Vm(first)) = r.iter().find(|r| matches!(r, Record::Vm(_))).cloned() else {
            panic!("no vm");
        };
        add(
            r,
            Record::Vm(Vm {
                name: "second",
                ram_region: 3,
                ..first
            }),
        );
    };
    // The second VM's segment after the first's: accepted.
    assert_eq!(
        checked(|r| {
            second_vm(r);
            edit!(r, VmSegment, 1, |s| s.vm = 1);
        }),
        Ok(())
    );
    // Before them: refused at the first VM's segment that follows it.
    assert_eq!(
        checked(|r| {
            second_vm(r);
            edit!(r, VmSegment, 0, |s| s.vm = 1);
        }),
        Err(at(Kind::VmSegment, 1, Why::SegmentOrder { previous_vm: 1 }))
    );
}
