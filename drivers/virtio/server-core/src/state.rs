//! The device's transport state, kept in the server's state page (`state:<server>`, mapped at
//! `abi::layout::STATE_PAGE_VA`, docs/VIRTIO.md "Restart without losing I/O") so that a
//! restarted server takes over the device where its previous instance left it.
//!
//! What is kept is `virtio_core::Transport` (features, status, every queue's size and areas),
//! postcard-encoded in `ipc::state`'s two-slot record (a crash in the middle of a save leaves the
//! previous record whole). Queue positions need not be fresh in it: `Transport::recover` reads
//! them back from the used rings in guest memory.

use virtio_core::Transport;

pub use ipc::state::{PAGE_BYTES, SaveError, clear};

/// Saves `transport` into `page`.
pub fn save(page: &mut [u8], transport: &Transport) -> Result<(), SaveError> {
    ipc::state::save(page, transport)
}

/// The newest saved transport in `page`, if there is a good one.
pub fn load(page: &[u8]) -> Option<Transport> {
    ipc::state::load(page)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use virtio_core::RamWindow;

    fn transport(status: u8) -> Transport {
        let mut transport =
            Transport::new(2, 0, 1, RamWindow::new(0x4000_0000, 0x100_0000).unwrap());
        for bit in [1u8, 2, 8, 4] {
            if status & bit != 0 {
                transport
                    .write(0x70, 4, u64::from(status & (bit | (bit - 1))))
                    .unwrap();
            }
        }
        transport
    }

    #[test]
    fn a_saved_transport_loads_back_and_the_newest_wins() {
        let mut page = vec![0u8; PAGE_BYTES];
        assert_eq!(load(&page), None, "a zeroed page holds nothing");
        let first = transport(1);
        save(&mut page, &first).unwrap();
        assert_eq!(load(&page), Some(first));
        let second = transport(3);
        save(&mut page, &second).unwrap();
        assert_eq!(load(&page), Some(second));
        clear(&mut page);
        assert_eq!(load(&page), None);
    }
}
