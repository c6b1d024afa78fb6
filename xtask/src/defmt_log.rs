//! Decoding the kernel's defmt log after a run.
//!
//! The kernel writes every defmt frame, its own and those it relays for the servers, to the
//! semihosting file `defmt.log` in QEMU's working directory (the image directory), as records
//!
//! ```text
//! [pd: u8][len: u16 little endian][len bytes: one defmt frame]
//! ```
//!
//! where pd 0 is the kernel (decoded against the image ELF) and pd i + 1 is server i of the
//! manifest (decoded against its ELF copy in the image directory). A missing file, or an ELF
//! without a defmt table, means there is nothing to decode: skipped silently.

use std::path::Path;

use defmt_decoder::{DecodeError, StreamDecoder, Table};

use crate::build::Image;

/// The semihosting file the kernel writes, relative to QEMU's working directory.
pub const FILE: &str = "defmt.log";

/// One record of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Protection domain: 0 = kernel, i + 1 = server i.
    pub pd: u8,
    /// One defmt frame.
    pub frame: &'a [u8],
}

/// Splits a log into records; a truncated last record (the system ended mid-write) is dropped.
pub fn records(mut log: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let (&[pd, low, high], rest) = log.split_first_chunk::<3>()?;
        let len = usize::from(u16::from_le_bytes([low, high]));
        let frame = rest.get(..len)?;
        log = &rest[len..];
        Some(Record { pd, frame })
    })
}

/// Prints the decoded log of `image`'s last run as `[<pd name>] <message>` lines.
pub fn print(image: &Image) {
    let Ok(log) = std::fs::read(image.dir.join(FILE)) else {
        return;
    };
    let lines = decode(image, &log);
    if lines.is_empty() {
        return;
    }
    println!("---- defmt log of {} ----", image.name);
    for line in lines {
        println!("{line}");
    }
}

/// Decodes `log` against the ELFs of `image`: one line per frame, in log order.
///
/// Each protection domain has its own stream decoder, so either defmt encoding (raw or rzcobs,
/// chosen by the ELF's table) works, and one domain's damaged frame cannot desynchronise
/// another's.
pub fn decode(image: &Image, log: &[u8]) -> Vec<String> {
    let domains = std::iter::once(("kernel", image.elf.as_path())).chain(
        image
            .servers
            .iter()
            .map(|(name, elf)| (name.as_str(), elf.as_path())),
    );
    let tables: Vec<Option<(&str, Table)>> = domains
        .map(|(name, elf)| load_table(elf).map(|table| (name, table)))
        .collect();
    let mut decoders: Vec<Option<(&str, Box<dyn StreamDecoder + '_>)>> = tables
        .iter()
        .map(|entry| {
            entry
                .as_ref()
                .map(|(name, table)| (*name, table.new_stream_decoder()))
        })
        .collect();
    let mut lines = Vec::new();
    for record in records(log) {
        let Some(Some((name, decoder))) = decoders.get_mut(usize::from(record.pd)) else {
            continue;
        };
        decoder.received(record.frame);
        loop {
            match decoder.decode() {
                Ok(frame) => lines.push(format!("[{name}] {}", frame.display_message())),
                Err(DecodeError::UnexpectedEof) => break,
                Err(DecodeError::Malformed) => {
                    lines.push(format!("[{name}] (malformed defmt frame)"));
                    break;
                }
            }
        }
    }
    lines
}

/// The defmt table of `elf`, or `None` when it cannot be read or has no (usable) table.
fn load_table(elf: &Path) -> Option<Table> {
    let bytes = std::fs::read(elf).ok()?;
    Table::parse(&bytes).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_records_and_drops_a_truncated_tail() {
        let log = [0, 2, 0, 0xaa, 0xbb, 3, 0, 0, 1, 2, 0, 0x10];
        let parsed: Vec<_> = records(&log).collect();
        assert_eq!(
            parsed,
            vec![
                Record {
                    pd: 0,
                    frame: &[0xaa, 0xbb]
                },
                Record { pd: 3, frame: &[] },
            ]
        );
        assert_eq!(records(&[]).count(), 0);
    }

    #[test]
    fn nothing_to_decode_without_elves() {
        let image = Image {
            name: "none".into(),
            dir: "/nonexistent".into(),
            elf: "/nonexistent/none.elf".into(),
            servers: vec![("server".into(), "/nonexistent/server.elf".into())],
        };
        assert!(decode(&image, &[0, 1, 0, 0, 1, 1, 0, 0]).is_empty());
    }
}
