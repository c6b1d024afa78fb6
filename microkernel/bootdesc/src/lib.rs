//! The boot description: what the host-side manifest compiler hands the kernel inside the image.
//!
//! The boot image carries one *payload*:
//!
//! ```text
//! 0                    PayloadHeader: magic "HVBOOT01", desc_len (u32 LE), images_offset (u32 LE)
//! 16                   boot description: a postcard stream of `Record`s, desc_len bytes
//! images_offset        server and guest images (ELF files, Linux Images, initrds, device
//!                      trees), each named by an `ImageRef` relative to images_offset
//! ```
//!
//! The description is a *stream* of records rather than one structure so the kernel can decode
//! it one record at a time, with no allocation and no fixed ceiling on any count. Records come
//! in this order: one `Header`, then `Server` × header.servers, `Endpoint` × header.endpoints,
//! `Notification` × ..., `Region` × ..., `Irq` × ..., `Cap` × ..., `Mapping` × ..., `Vm` × ...,
//! `VmSegment` × header.vm_segments. Indices in a record refer to the position of the object
//! among records of its kind. The kernel checks the order, every count and every index: a
//! payload it cannot fully validate does not boot.
//!
//! Each server also gets a *boot-info blob* (see [`bootinfo`]), copied verbatim by the kernel
//! into the server's boot-info page: the server's id and the names of its capabilities.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

pub mod bootinfo;
mod records;

pub use records::*;

/// The first bytes of a payload.
pub const PAYLOAD_MAGIC: [u8; 8] = *b"HVBOOT01";
/// Version of the record format; the kernel refuses any other.
pub const FORMAT_VERSION: u16 = 7;
/// Size of the fixed payload header.
pub const PAYLOAD_HEADER_LEN: usize = 16;
/// Alignment of the image area and of every image inside it.
pub const IMAGE_ALIGN: usize = 4096;

/// The fixed header at the start of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadHeader {
    /// Length of the boot description that follows the header.
    pub desc_len: u32,
    /// Where the image area starts, from the payload start.
    pub images_offset: u32,
}

/// Why a payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Shorter than its header, or the header's lengths point past the end.
    Truncated,
    /// The magic bytes are wrong.
    BadMagic,
    /// A record did not decode.
    Malformed,
    /// The header's format version is not [`FORMAT_VERSION`].
    WrongVersion,
    /// A record of the wrong kind, or too many or too few of a kind.
    Order,
}

impl PayloadHeader {
    /// Parses and bounds-checks the header of `payload`.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let header = payload
            .get(..PAYLOAD_HEADER_LEN)
            .ok_or(PayloadError::Truncated)?;
        if header[..8] != PAYLOAD_MAGIC {
            return Err(PayloadError::BadMagic);
        }
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let parsed = Self {
            desc_len: word(8),
            images_offset: word(12),
        };
        let desc_end = PAYLOAD_HEADER_LEN
            .checked_add(parsed.desc_len as usize)
            .ok_or(PayloadError::Truncated)?;
        if desc_end > payload.len() || (parsed.images_offset as usize) > payload.len() {
            return Err(PayloadError::Truncated);
        }
        if (parsed.images_offset as usize) < desc_end {
            return Err(PayloadError::Truncated);
        }
        Ok(parsed)
    }

    /// The boot-description bytes of `payload` (already bounds-checked by [`Self::parse`]).
    pub fn description<'a>(&self, payload: &'a [u8]) -> &'a [u8] {
        payload
            .get(PAYLOAD_HEADER_LEN..PAYLOAD_HEADER_LEN + self.desc_len as usize)
            .unwrap_or(&[])
    }

    /// The bytes of one image, or `None` when the reference points outside the payload.
    pub fn image<'a>(&self, payload: &'a [u8], image: ImageRef) -> Option<&'a [u8]> {
        let start = (self.images_offset as usize).checked_add(image.offset as usize)?;
        let end = start.checked_add(image.len as usize)?;
        payload.get(start..end)
    }
}

/// Reads records one at a time from a boot description.
pub struct RecordReader<'a> {
    rest: &'a [u8],
}

impl<'a> RecordReader<'a> {
    /// Starts reading `description`.
    pub fn new(description: &'a [u8]) -> Self {
        Self { rest: description }
    }

    /// The next record; `Ok(None)` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>, PayloadError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (record, rest) = postcard::take_from_bytes::<Record<'a>>(self.rest)
            .map_err(|_| PayloadError::Malformed)?;
        self.rest = rest;
        Ok(Some(record))
    }
}

/// Builds a payload from records and images (host side).
#[cfg(feature = "std")]
pub fn build_payload(records: &[Record<'_>], images: &[&[u8]]) -> Result<Vec<u8>, postcard::Error> {
    let mut description = Vec::new();
    for record in records {
        description.extend_from_slice(&postcard::to_allocvec(record)?);
    }
    let desc_end = PAYLOAD_HEADER_LEN + description.len();
    let images_offset = desc_end.next_multiple_of(IMAGE_ALIGN);
    let mut payload = Vec::with_capacity(images_offset);
    payload.extend_from_slice(&PAYLOAD_MAGIC);
    payload.extend_from_slice(&(description.len() as u32).to_le_bytes());
    payload.extend_from_slice(&(images_offset as u32).to_le_bytes());
    payload.extend_from_slice(&description);
    payload.resize(images_offset, 0);
    for image in images {
        payload.extend_from_slice(image);
        payload.resize(payload.len().next_multiple_of(IMAGE_ALIGN), 0);
    }
    Ok(payload)
}

/// Where each image of `images` lands in the image area built by [`build_payload`].
#[cfg(feature = "std")]
pub fn image_refs(images: &[&[u8]]) -> Vec<ImageRef> {
    let mut offset = 0usize;
    images
        .iter()
        .map(|image| {
            let reference = ImageRef {
                offset: offset as u32,
                len: image.len() as u32,
            };
            offset = (offset + image.len()).next_multiple_of(IMAGE_ALIGN);
            reference
        })
        .collect()
}

#[cfg(all(test, feature = "std"))]
mod tests;
