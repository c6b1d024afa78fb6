//! virtio 1.2 devices over MMIO (transport version 2), as the pure logic a device server runs:
//! the register window ([`mmio`]), split virtqueues ([`queue`]), and the block ([`blk`]) and
//! console ([`console`]) devices. docs/VIRTIO.md gives the overview.
//!
//! A server owns one device, answers each `device_api::Request` the vmm forwards with
//! [`BlockDevice::handle`] or [`ConsoleDevice::handle`] (the answer carries the interrupt
//! line), and implements [`GuestMemory`] over its mapping of the guest's RAM. Everything the
//! guest controls — register values, ring indices, descriptors, request headers — is checked
//! here; a bad value fails the request, or stops the queue with DEVICE_NEEDS_RESET, and never
//! panics.
//!
//! Specification: Virtual I/O Device (VIRTIO) Version 1.2, OASIS; section numbers below are
//! its. Linux's drivers/virtio/virtio_mmio.c, virtio_ring.c, drivers/block/virtio_blk.c and
//! drivers/char/virtio_console.c (6.1) are the driver this is checked against.
#![no_std]
#![forbid(unsafe_code)]

pub mod blk;
pub mod console;
pub mod memory;
pub mod mmio;
pub mod queue;

pub use blk::{BackendError, BlockBackend, BlockConfig, BlockDevice};
pub use console::ConsoleDevice;
pub use device_api::{Request, Response};
pub use memory::{GuestMemory, MemoryError, RamWindow, SliceMemory};
pub use mmio::{BusError, Event, Transport};
pub use queue::{Chain, ChainError, Descriptor, QUEUE_SIZE_MAX, Queue, QueueError};

#[cfg(test)]
mod tests;
