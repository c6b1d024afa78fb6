//! The QEMU `virt` platform.
pub mod layout;
