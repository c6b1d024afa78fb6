//! The logic of the physical virtio-blk driver (docs/VIRTIO.md, "Physical virtio-blk driver")
//! that touches no hardware, host-tested:
//!
//! - [`request`]: turning a `block_api::Request` into a checked [`request::Transfer`] (or the
//!   typed error the client gets), against the disk's capacity and the client's window;
//! - [`dma`]: the driver's view of its two RAM regions: the private DMA pool that virtqueue
//!   memory is bump-allocated from (with a bounce area for the small request headers
//!   virtio-drivers keeps on the stack) and the window shared with the client, and the
//!   translation of a buffer's address to the physical address the device is given;
//! - [`probe`]: which of QEMU virt's 32 virtio-mmio transports holds the block device.
//!
//! The server crate implements virtio-drivers' `Hal` over [`dma::DmaState`] and does the
//! volatile and DMA memory accesses.
#![no_std]
#![forbid(unsafe_code)]

pub mod dma;
pub mod probe;
pub mod request;
