//! The parts of the virtio device servers (`drv-virtio-blk-server`, `drv-virtio-console-server`;
//! docs/VIRTIO.md, "Device servers") that need no kernel, host-tested:
//!
//! - [`setup`]: the device a server serves and the guest's RAM window, from its boot info;
//! - [`remote`]: `virtio_core::BlockBackend` over the physical driver's `block_api::Block`,
//!   the data copied through the window the two servers share;
//! - [`lines`]: the console's output, line by line; [`input`]: its input, waiting for buffers;
//! - [`state`]: the device's transport state in the server's state page, which outlives a
//!   restart (docs/VIRTIO.md, "Restart without losing I/O");
//! - [`doors`]: the three ways an access arrives (vmm, kernel fast path, doorbell) and when the
//!   vmm must be told that the interrupt line changed.
//!
//! The servers implement the two traits that touch memory ([`remote::BlockClient`] over IPC
//! and the shared window, `virtio_core::GuestMemory` over their mapping of guest RAM).
#![no_std]
#![forbid(unsafe_code)]

pub mod doors;
pub mod input;
pub mod lines;
pub mod remote;
pub mod setup;
pub mod state;
