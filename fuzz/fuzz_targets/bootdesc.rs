//! The boot description as its readers take it: the kernel's `PayloadHeader::parse` and
//! `RecordReader` over a whole payload, and the servers' boot-info lookups over a blob. Never a
//! panic, the stream of records ends, every slice handed out lies inside the input and has the
//! length its header or reference gives, and a record that decodes encodes and decodes to
//! itself.
#![no_main]

use bootdesc::bootinfo;
use bootdesc::{PayloadHeader, Record, RecordReader};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    payload(data);
    blob(data);
});

/// The kernel's side: header, description, every record, every image a record names.
fn payload(data: &[u8]) {
    let Ok(header) = PayloadHeader::parse(data) else {
        return;
    };
    let description = header.description(data);
    assert_eq!(description.len(), header.desc_len as usize);
    assert!(bootdesc::PAYLOAD_HEADER_LEN + description.len() <= header.images_offset as usize);
    assert!(header.images_offset as usize <= data.len());
    let mut reader = RecordReader::new(description);
    // Each record takes at least one byte, so the stream ends.
    for _ in 0..=description.len() {
        match reader.next_record() {
            Ok(Some(record)) => {
                round_trip(&record);
                for image in images(&record) {
                    if let Some(bytes) = header.image(data, image) {
                        assert_eq!(bytes.len(), image.len as usize);
                    }
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("the record stream did not end");
}

/// The images a record names.
fn images(record: &Record<'_>) -> Vec<bootdesc::ImageRef> {
    match record {
        Record::Server(server) => vec![server.image],
        Record::VmSegment(segment) => vec![segment.image],
        _ => Vec::new(),
    }
}

/// A decoded record encodes again and decodes to itself.
fn round_trip(record: &Record<'_>) {
    let bytes = postcard::to_allocvec(record).expect("a decoded record encodes");
    let again: Record<'_> = postcard::from_bytes(&bytes).expect("an encoded record decodes");
    assert_eq!(&again, record);
}

/// A server's side: every lookup of its boot-info blob.
fn blob(data: &[u8]) {
    if let Some((header, rest)) = bootinfo::header(data) {
        assert!(rest.len() < data.len());
        let _ = header.name.len();
    }
    let _ = bootinfo::find_cap(data, "faults");
    let _ = bootinfo::find_vm_cap(data, "exits", "guest");
    let _ = bootinfo::highest_slot(data);
    let mut count = 0usize;
    let _ = bootinfo::for_each_supervised(data, |_| {
        count += 1;
        true
    });
    let _ = bootinfo::for_each_vm(data, |_| {
        count += 1;
        true
    });
    let _ = bootinfo::for_each_device(data, |_| {
        count += 1;
        true
    });
    // Every record decoded takes at least one byte of the blob.
    assert!(count <= data.len());
}
