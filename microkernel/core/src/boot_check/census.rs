//! The first pass: the payload's header, the description's header record, then every record
//! decoded once for its kind, its place in the order and the header's counts.

use super::{At, BootError, Kind, MAX_SERVERS, MAX_VMS, TIMESLICE_US, Why, announced, kind_of};
use bootdesc::{Header, PayloadHeader, Record, RecordReader};

/// What the first pass found.
#[derive(Clone, Debug)]
pub struct Census<'a> {
    /// The payload's fixed header.
    pub payload: PayloadHeader,
    /// The record stream.
    pub description: &'a [u8],
    /// Its header record, with counts the stream was checked against.
    pub header: Header<'a>,
    /// The CNode slots of all servers together.
    pub slots: u64,
}

/// The first pass: the payload's header, the description's header record, then every record
/// decoded once for its kind, order and count.
pub fn census(payload: &[u8]) -> Result<Census<'_>, BootError> {
    if payload.is_empty() {
        return Err(BootError::new(At::Payload, Why::NoPayload));
    }
    let payload_header =
        PayloadHeader::parse(payload).map_err(|e| BootError::new(At::Payload, Why::Payload(e)))?;
    let description = payload_header.description(payload);
    let mut reader = RecordReader::new(description);
    let header = match reader.next_record() {
        Ok(Some(Record::Header(header))) => header,
        Ok(other) => {
            let found = other.as_ref().map(kind_of);
            return Err(BootError::new(At::Record(0), Why::NotAHeader { found }));
        }
        Err(_) => return Err(BootError::new(At::Record(0), Why::Undecodable)),
    };
    check_header(&header)?;
    let mut seen = [0u64; Kind::ALL.len()];
    let mut last = Kind::Header;
    let mut slots = 0u64;
    let mut position = 0u32;
    loop {
        position = position.saturating_add(1);
        let at = At::Record(position);
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(_) => return Err(BootError::new(at, Why::Undecodable)),
        };
        let kind = kind_of(&record);
        if kind == Kind::Header {
            return Err(BootError::new(at, Why::SecondHeader));
        }
        if kind < last {
            return Err(BootError::new(at, Why::OutOfOrder { kind, after: last }));
        }
        last = kind;
        seen[kind as usize] += 1;
        if let Record::Server(server) = &record {
            slots += u64::from(server.cnode_slots);
        }
    }
    for kind in Kind::ALL {
        let (header_count, found) = (announced(&header, kind), seen[kind as usize]);
        if kind != Kind::Header && found != header_count {
            let why = Why::Count {
                kind,
                header: header_count,
                found,
            };
            return Err(BootError::new(At::HEADER, why));
        }
    }
    Ok(Census {
        payload: payload_header,
        description,
        header,
        slots,
    })
}

/// The header record's own fields: the format version first (every other field may mean
/// something else in another version), then the limits.
fn check_header(header: &Header<'_>) -> Result<(), BootError> {
    if header.version != bootdesc::FORMAT_VERSION {
        let why = Why::Version {
            found: header.version,
        };
        return Err(BootError::new(At::HEADER, why));
    }
    if header.servers == 0 {
        return Err(BootError::new(At::HEADER, Why::NoServers));
    }
    // The first record without a VMID is the one refused.
    if header.servers > MAX_SERVERS {
        let limit = MAX_SERVERS.into();
        let at = At::of(Kind::Server, limit);
        return Err(BootError::new(at, Why::TooManyForVmids { limit }));
    }
    if header.vms > MAX_VMS {
        let limit = MAX_VMS.into();
        return Err(BootError::new(
            At::of(Kind::Vm, limit),
            Why::TooManyForVmids { limit },
        ));
    }
    if !TIMESLICE_US.contains(&header.timeslice_us) {
        let why = Why::Timeslice {
            us: header.timeslice_us,
        };
        return Err(BootError::new(At::HEADER, why));
    }
    Ok(())
}
