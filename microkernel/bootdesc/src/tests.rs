use super::*;
use abi::Rights;

fn sample_records() -> Vec<Record<'static>> {
    vec![
        Record::Header(Header {
            version: FORMAT_VERSION,
            name: "sample",
            servers: 1,
            endpoints: 1,
            notifications: 0,
            regions: 0,
            irqs: 0,
            caps: 1,
            mappings: 0,
            vms: 0,
            vm_segments: 0,
            timeslice_us: 2000,
            test_system: false,
        }),
        Record::Server(Server {
            name: "one",
            image: ImageRef { offset: 0, len: 5 },
            priority: 10,
            stack_bytes: 16384,
            heap_bytes: 0,
            cnode_slots: 16,
            restart: RestartPolicy::Budget {
                restarts: 3,
                within_ms: 1000,
            },
            role: ServerRole::Supervisor,
            fault_endpoint: None,
            fault_badge: 1,
            inject_fault: None,
            bootinfo: &[1, 2, 3],
        }),
        Record::Endpoint(Endpoint {
            name: "ep",
            server: Some(0),
        }),
        Record::Cap(Cap {
            server: 0,
            slot: 2,
            object: CapObject::Endpoint {
                index: 0,
                badge: 7,
                rights: Rights::READ,
            },
        }),
    ]
}

#[test]
fn payload_round_trips_records_and_images() {
    let records = sample_records();
    let images: [&[u8]; 2] = [b"hello", b"world!"];
    let payload = build_payload(&records, &images).unwrap();
    let header = PayloadHeader::parse(&payload).unwrap();
    assert_eq!(header.images_offset as usize % IMAGE_ALIGN, 0);
    let mut reader = RecordReader::new(header.description(&payload));
    let mut decoded = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        decoded.push(record);
    }
    assert_eq!(decoded, records);
    let refs = image_refs(&images);
    assert_eq!(header.image(&payload, refs[0]), Some(&b"hello"[..]));
    assert_eq!(header.image(&payload, refs[1]), Some(&b"world!"[..]));
}

/// A VM record followed by its segments: a Linux guest whose x0 is its device tree's address.
fn vm_records() -> Vec<Record<'static>> {
    vec![
        Record::Vm(Vm {
            name: "linux",
            ram_base: 0x4000_0000,
            ram_region: 3,
            priority: 100,
            exit_endpoint: 2,
            exit_badge: 1,
            entry: 0x4000_0000,
            x0: 0x4fe0_0000,
            // Not the usual value, so the round trip shows the flag is carried.
            mmio_markers: false,
        }),
        Record::VmSegment(VmSegment {
            vm: 0,
            image: ImageRef {
                offset: 0x1000,
                len: 0x20,
            },
            ipa: 0x4000_0000,
        }),
        Record::VmSegment(VmSegment {
            vm: 0,
            image: ImageRef {
                offset: u32::MAX - 8,
                len: 8,
            },
            ipa: u64::MAX - 7,
        }),
    ]
}

#[test]
fn vm_and_segment_records_round_trip_with_every_field() {
    let records = vm_records();
    let payload = build_payload(&records, &[]).unwrap();
    let header = PayloadHeader::parse(&payload).unwrap();
    let mut reader = RecordReader::new(header.description(&payload));
    let mut decoded = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        decoded.push(record);
    }
    assert_eq!(decoded, records);
    // A segment reference is bounds-checked like any image: the one past the payload is refused.
    let Record::VmSegment(far) = records[2] else {
        unreachable!()
    };
    assert_eq!(header.image(&payload, far.image), None);
}

#[test]
fn a_vms_mmio_markers_flag_decodes_as_written() {
    let decoded_flag = |mmio_markers: bool| {
        let Record::Vm(vm) = &vm_records()[0] else {
            unreachable!()
        };
        let record = Record::Vm(Vm {
            mmio_markers,
            ..vm.clone()
        });
        let payload = build_payload(core::slice::from_ref(&record), &[]).unwrap();
        let header = PayloadHeader::parse(&payload).unwrap();
        match RecordReader::new(header.description(&payload)).next_record() {
            Ok(Some(Record::Vm(vm))) => vm.mmio_markers,
            other => panic!("not a Vm record: {other:?}"),
        }
    };
    assert!(decoded_flag(true));
    assert!(!decoded_flag(false));
}

#[test]
fn a_segment_may_name_part_of_an_image() {
    // ELF guests' segments are sub-ranges of the ELF already in the payload.
    let images: [&[u8]; 2] = [b"server", b"\x7fELF-guest-bytes"];
    let payload = build_payload(&vm_records()[..1], &images).unwrap();
    let header = PayloadHeader::parse(&payload).unwrap();
    let guest = image_refs(&images)[1];
    let part = ImageRef {
        offset: guest.offset + 5,
        len: 5,
    };
    assert_eq!(header.image(&payload, part), Some(&b"guest"[..]));
    let past_the_end = ImageRef {
        offset: guest.offset + 5,
        len: u32::MAX,
    };
    assert_eq!(header.image(&payload, past_the_end), None);
}

#[test]
fn truncated_or_corrupt_payloads_are_refused() {
    let payload = build_payload(&sample_records(), &[]).unwrap();
    assert_eq!(
        PayloadHeader::parse(&payload[..10]),
        Err(PayloadError::Truncated)
    );
    let mut bad_magic = payload.clone();
    bad_magic[0] ^= 1;
    assert_eq!(
        PayloadHeader::parse(&bad_magic),
        Err(PayloadError::BadMagic)
    );
    let mut long_desc = payload.clone();
    long_desc[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        PayloadHeader::parse(&long_desc),
        Err(PayloadError::Truncated)
    );
    let header = PayloadHeader::parse(&payload).unwrap();
    assert_eq!(
        header.image(
            &payload,
            ImageRef {
                offset: u32::MAX,
                len: 4
            }
        ),
        None
    );
    let mut reader = RecordReader::new(&[0xFF, 0xFF, 0xFF]);
    assert_eq!(reader.next_record(), Err(PayloadError::Malformed));
}

#[test]
fn bootinfo_finds_caps_by_name() {
    let blob = bootinfo::encode(
        &bootinfo::BootInfoHeader {
            server_id: 3,
            name: "pong",
            caps: 0,
            heap_bytes: 0,
            supervised: 0,
            vms: 0,
            devices: 0,
        },
        &[
            bootinfo::CapName {
                name: "requests",
                slot: 2,
            },
            bootinfo::CapName {
                name: "system",
                slot: 5,
            },
        ],
        &[bootinfo::SupervisedServer {
            name: "ping",
            fault_badge: 2,
            tcb_slot: 6,
            restart: RestartPolicy::Always,
        }],
        &[bootinfo::VmInfo {
            name: "guest",
            index: 0,
            ram_base: 0x4000_0000,
            ram_size: 0x400_0000,
            mmu_badge: Some(4),
            resets: 8,
            dirty_log_windows: 16,
        }],
    )
    .unwrap();
    assert_eq!(bootinfo::find_cap(&blob, "system"), Some(5));
    assert_eq!(bootinfo::find_cap(&blob, "requests"), Some(2));
    assert_eq!(bootinfo::find_cap(&blob, "nothing"), None);
    assert_eq!(bootinfo::header(&blob).unwrap().0.name, "pong");
    let mut seen = Vec::new();
    bootinfo::for_each_supervised(&blob, |server| {
        seen.push((server.name.to_string(), server.fault_badge, server.tcb_slot));
        true
    })
    .unwrap();
    assert_eq!(seen, vec![("ping".to_string(), 2, 6)]);
    let mut vms = Vec::new();
    bootinfo::for_each_vm(&blob, |vm| {
        vms.push((
            vm.name.to_string(),
            vm.ram_base,
            vm.ram_size,
            vm.dirty_log_windows,
        ));
        true
    })
    .unwrap();
    assert_eq!(
        vms,
        vec![("guest".to_string(), 0x4000_0000, 0x400_0000, 16)]
    );
}

#[test]
fn bootinfo_lists_devices_after_the_vms() {
    let header = bootinfo::BootInfoHeader {
        server_id: 4,
        name: "vmm",
        caps: 0,
        heap_bytes: 0,
        supervised: 0,
        vms: 0,
        devices: 0,
    };
    let vm = bootinfo::VmInfo {
        name: "linux",
        index: 1,
        ram_base: 0x4000_0000,
        ram_size: 0x1000_0000,
        mmu_badge: None,
        resets: 0,
        dirty_log_windows: 4,
    };
    let devices = [
        bootinfo::DeviceInfo {
            vm: 1,
            kind: bootinfo::DeviceKind::VirtioBlk,
            base: 0x0A00_0000,
            size: 0x200,
            intid: 48,
            endpoint: "vblk",
        },
        bootinfo::DeviceInfo {
            vm: 1,
            kind: bootinfo::DeviceKind::VirtioConsole,
            base: 0x0A00_0200,
            size: 0x200,
            intid: 49,
            endpoint: "vcon",
        },
    ];
    let caps = [bootinfo::CapName {
        name: "vblk",
        slot: 7,
    }];
    let blob =
        bootinfo::encode_with_devices(&header, &caps, &[], core::slice::from_ref(&vm), &devices)
            .unwrap();
    assert_eq!(bootinfo::header(&blob).unwrap().0.devices, 2);
    let mut seen = Vec::new();
    bootinfo::for_each_device(&blob, |device| {
        seen.push(device);
        true
    })
    .unwrap();
    assert_eq!(seen, devices);
    // The VMs before them still decode, and stopping early stops.
    let mut vms = Vec::new();
    bootinfo::for_each_vm(&blob, |info| {
        vms.push(info);
        true
    })
    .unwrap();
    assert_eq!(vms, [vm]);
    let mut first = Vec::new();
    bootinfo::for_each_device(&blob, |device| {
        first.push(device.endpoint);
        false
    })
    .unwrap();
    assert_eq!(first, ["vblk"]);
    // A blob without devices lists none; a truncated one is refused, not misread.
    let plain = bootinfo::encode(&header, &caps, &[], &[]).unwrap();
    let mut none = 0;
    bootinfo::for_each_device(&plain, |_| {
        none += 1;
        true
    })
    .unwrap();
    assert_eq!(none, 0);
    let cut = &blob[..blob.len() - 3];
    assert_eq!(bootinfo::for_each_device(cut, |_| true), None);
}
