//! The platform the kernel runs on: one, chosen here.
mod qemu_virt;
pub use qemu_virt::layout;
