//! The census: the payload's header, the stream's decoding, order and counts, the header's own
//! fields.

use super::*;

/// A payload whose description is `description`, byte for byte, and no images.
fn raw(description: &[u8]) -> Vec<u8> {
    let mut payload = bootdesc::PAYLOAD_MAGIC.to_vec();
    payload.extend((description.len() as u32).to_le_bytes());
    payload.extend(((16 + description.len()) as u32).to_le_bytes());
    payload.extend(description);
    payload
}

/// The encoded records of `records`.
fn description_of(records: &[Record<'_>]) -> Vec<u8> {
    let payload = bootdesc::build_payload(records, &[]).expect("records encode");
    let header = bootdesc::PayloadHeader::parse(&payload).expect("a payload");
    header.description(&payload).to_vec()
}

fn census_error(payload: &[u8]) -> BootError {
    census(payload).map(|_| ()).expect_err("refused")
}

#[test]
fn the_payload_header_is_checked_first() {
    assert_eq!(
        census_error(&[]),
        BootError::new(At::Payload, Why::NoPayload)
    );
    let truncated = bootdesc::PayloadError::Truncated;
    assert_eq!(
        census_error(&payload_of(&good())[..15]),
        BootError::new(At::Payload, Why::Payload(truncated))
    );
    let mut payload = payload_of(&good());
    payload[0] ^= 1;
    assert_eq!(
        census_error(&payload),
        BootError::new(At::Payload, Why::Payload(bootdesc::PayloadError::BadMagic))
    );
    // A description length past the end of the payload.
    let mut long = raw(&[]);
    long[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        census_error(&long),
        BootError::new(At::Payload, Why::Payload(truncated))
    );
}

#[test]
fn the_description_starts_with_one_header() {
    assert_eq!(
        census_error(&raw(&[])),
        BootError::new(At::Record(0), Why::NotAHeader { found: None })
    );
    let headless = description_of(&good()[1..]);
    assert_eq!(
        census_error(&raw(&headless)),
        BootError::new(
            At::Record(0),
            Why::NotAHeader {
                found: Some(Kind::Server)
            }
        )
    );
    assert_eq!(
        census_error(&raw(&[0xFF])),
        BootError::new(At::Record(0), Why::Undecodable)
    );
    let mut records = good();
    records.insert(3, records[0].clone());
    assert_eq!(
        census_error(&raw(&description_of(&records))),
        BootError::new(At::Record(3), Why::SecondHeader)
    );
}

#[test]
fn a_record_that_does_not_decode_is_named_by_its_position() {
    let records = good();
    let mut trailing = description_of(&records);
    trailing.push(0xFF);
    assert_eq!(
        census_error(&raw(&trailing)),
        BootError::new(At::Record(records.len() as u32), Why::Undecodable)
    );
    // The last record cut short.
    let mut short = description_of(&records);
    short.pop();
    assert_eq!(
        census_error(&raw(&short)),
        BootError::new(At::Record(records.len() as u32 - 1), Why::Undecodable)
    );
}

#[test]
fn records_come_in_kind_order() {
    let mut records = good();
    // Header, two servers, then the notification before the endpoints.
    let notification = records.remove(5);
    assert!(matches!(notification, Record::Notification(_)));
    records.insert(3, notification);
    assert_eq!(
        census_error(&raw(&description_of(&records))),
        BootError::new(
            At::Record(4),
            Why::OutOfOrder {
                kind: Kind::Endpoint,
                after: Kind::Notification
            }
        )
    );
}

#[test]
fn every_count_of_the_header_is_checked() {
    let records = good();
    let found = |kind| records.iter().filter(|r| kind_of(r) == kind).count() as u64;
    for kind in Kind::ALL.into_iter().skip(1) {
        for delta in [1i64, -1] {
            let mut changed = good();
            edit!(changed, Header, 0, |h| {
                let bump = |count: u64| (count as i64 + delta) as u64;
                match kind {
                    Kind::Server => h.servers = bump(h.servers.into()) as u16,
                    Kind::Endpoint => h.endpoints = bump(h.endpoints.into()) as u16,
                    Kind::Notification => h.notifications = bump(h.notifications.into()) as u16,
                    Kind::Region => h.regions = bump(h.regions.into()) as u16,
                    Kind::Irq => h.irqs = bump(h.irqs.into()) as u16,
                    Kind::Cap => h.caps = bump(h.caps.into()) as u32,
                    Kind::Mapping => h.mappings = bump(h.mappings.into()) as u32,
                    Kind::Vm => h.vms = bump(h.vms.into()) as u16,
                    Kind::VmSegment => h.vm_segments = bump(h.vm_segments.into()) as u32,
                    Kind::Header => unreachable!(),
                }
            });
            let expected = Why::Count {
                kind,
                header: (found(kind) as i64 + delta) as u64,
                found: found(kind),
            };
            assert_eq!(
                census_error(&payload_of(&changed)),
                BootError::new(At::HEADER, expected),
                "{kind:?} {delta:+}"
            );
        }
    }
}

#[test]
fn the_header_is_checked_before_the_records() {
    let header_error = |change: fn(&mut Header<'static>)| {
        let mut records = good();
        edit!(records, Header, 0, |h| change(h));
        census_error(&payload_of(&records))
    };
    assert_eq!(
        header_error(|h| h.version = bootdesc::FORMAT_VERSION - 1),
        BootError::new(
            At::HEADER,
            Why::Version {
                found: bootdesc::FORMAT_VERSION - 1
            }
        )
    );
    assert_eq!(
        header_error(|h| h.servers = 0),
        BootError::new(At::HEADER, Why::NoServers)
    );
    // The first record without a VMID is refused; up to the limit only the count is wrong.
    assert_eq!(
        header_error(|h| h.servers = 128),
        at(Kind::Server, 127, Why::TooManyForVmids { limit: 127 })
    );
    assert_eq!(
        header_error(|h| h.servers = 127),
        BootError::new(
            At::HEADER,
            Why::Count {
                kind: Kind::Server,
                header: 127,
                found: 2
            }
        )
    );
    assert_eq!(
        header_error(|h| h.vms = 129),
        at(Kind::Vm, 128, Why::TooManyForVmids { limit: 128 })
    );
    assert_eq!(
        header_error(|h| h.vms = 128),
        BootError::new(
            At::HEADER,
            Why::Count {
                kind: Kind::Vm,
                header: 128,
                found: 1
            }
        )
    );
    for us in [0, 99, 1_000_001, u32::MAX] {
        let mut records = good();
        edit!(records, Header, 0, |h| h.timeslice_us = us);
        assert_eq!(
            census_error(&payload_of(&records)),
            BootError::new(At::HEADER, Why::Timeslice { us }),
            "{us}"
        );
    }
    for us in [100, 1_000_000] {
        assert_eq!(
            checked(|r| edit!(r, Header, 0, |h| h.timeslice_us = us)),
            Ok(())
        );
    }
}
