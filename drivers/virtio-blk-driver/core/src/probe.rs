//! Which virtio-mmio transport holds the block device.
//!
//! QEMU's virt machine creates 32 virtio-mmio transports at `0x0A00_0000 + n * 0x200`
//! (`VIRT_MMIO` in hw/arm/virt.c, SPI 16 + n), each answering its magic and version whether or
//! not a device is plugged in; an empty one reads DeviceID 0, which virtio 1.1 §4.2.2 reserves
//! for placeholder transports with no device behind them. virt.c's `create_virtio_devices` explains that command-line `-device` options take
//! transports from the highest address down, so the first `-device virtio-blk-device` is
//! transport 31. The driver reads every header and takes the highest-numbered block device.

/// Transports on QEMU virt.
pub const TRANSPORTS: usize = 32;
/// Bytes from one transport to the next.
pub const TRANSPORT_STRIDE: u64 = 0x200;
/// The whole window the manifest maps: 32 transports.
pub const WINDOW_BYTES: u64 = TRANSPORTS as u64 * TRANSPORT_STRIDE;
/// The INTID of transport 0 (SPI 16); transport `n` interrupts at `FIRST_INTID + n`.
pub const FIRST_INTID: u32 = 48;
/// `MagicValue` (offset 0x000): "virt" little-endian (virtio 1.1 §4.2.2).
pub const MAGIC: u32 = 0x7472_6976;
/// Offsets of the three identification registers.
pub const MAGIC_OFFSET: u64 = 0x000;
/// `Version`: 1 legacy, 2 modern.
pub const VERSION_OFFSET: u64 = 0x004;
/// `DeviceID`.
pub const DEVICE_ID_OFFSET: u64 = 0x008;
/// `DeviceID` of a block device (virtio 1.1 §5 "Device Types").
pub const BLOCK_DEVICE_ID: u32 = 2;

/// The identification registers of one transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `MagicValue`.
    pub magic: u32,
    /// `Version`.
    pub version: u32,
    /// `DeviceID`.
    pub device_id: u32,
}

impl Header {
    /// A virtio-mmio transport of a version the driver speaks (1 legacy or 2) holding a block
    /// device.
    pub fn is_block_device(&self) -> bool {
        self.magic == MAGIC && matches!(self.version, 1 | 2) && self.device_id == BLOCK_DEVICE_ID
    }
}

/// The transport to drive among `headers` (transport number and header): the highest-numbered
/// block device, `None` when there is none.
pub fn choose(headers: impl IntoIterator<Item = (usize, Header)>) -> Option<usize> {
    headers
        .into_iter()
        .filter(|(index, header)| *index < TRANSPORTS && header.is_block_device())
        .map(|(index, _)| index)
        .max()
}

/// The byte offset of transport `index` in the window.
pub fn offset_of(index: usize) -> u64 {
    index as u64 * TRANSPORT_STRIDE
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: Header = Header {
        magic: MAGIC,
        version: 1,
        device_id: 0,
    };
    const BLOCK: Header = Header {
        device_id: BLOCK_DEVICE_ID,
        ..EMPTY
    };

    #[test]
    fn the_highest_block_device_is_chosen() {
        let mut headers = [EMPTY; TRANSPORTS];
        assert_eq!(choose(headers.iter().copied().enumerate()), None);
        headers[31] = BLOCK;
        assert_eq!(choose(headers.iter().copied().enumerate()), Some(31));
        // A second disk (a later -device) sits lower: the first one stays chosen.
        headers[30] = BLOCK;
        assert_eq!(choose(headers.iter().copied().enumerate()), Some(31));
        headers[31] = Header {
            device_id: 1, // a network card
            ..EMPTY
        };
        assert_eq!(choose(headers.iter().copied().enumerate()), Some(30));
    }

    #[test]
    fn only_real_transports_of_known_versions_count() {
        let no_magic = Header { magic: 0, ..BLOCK };
        let version_3 = Header {
            version: 3,
            ..BLOCK
        };
        let modern = Header {
            version: 2,
            ..BLOCK
        };
        assert!(!no_magic.is_block_device());
        assert!(!version_3.is_block_device());
        assert!(modern.is_block_device());
        assert_eq!(choose([(5, no_magic), (6, version_3)]), None);
        assert_eq!(choose([(32, BLOCK)]), None, "there is no transport 32");
    }

    #[test]
    fn transports_are_laid_out_as_on_qemu_virt() {
        assert_eq!(offset_of(31), 0x3E00);
        assert_eq!(WINDOW_BYTES, 0x4000);
        assert_eq!(FIRST_INTID + 31, 79);
        assert_eq!(&MAGIC.to_le_bytes(), b"virt");
    }
}
