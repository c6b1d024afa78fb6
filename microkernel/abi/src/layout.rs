//! Where the kernel places things in every server's address space.
//!
//! A server's VSpace is a stage-2 table with stage 1 off, so its virtual addresses are
//! intermediate physical addresses (docs/DESIGN.md, "Privilege split"). All servers are linked
//! at the same address.
//!
//! ```text
//! 0x0000_0000 .. 0x0010_0000   unmapped (null guard)
//! 0x0010_0000                  boot info page (read-only): server id, name, capability names
//! 0x0010_1000                  IPC buffer (read-write)
//! 0x0010_2000 .. 0x0011_0000   unmapped (guard)
//! 0x0011_0000 .. 0x0020_0000   stack, grows down from STACK_TOP (size from the manifest)
//! 0x0020_0000 ..               program image (ELF PT_LOAD segments)
//! 0x1000_0000 ..               heap (size from the manifest)
//! 0x4000_0000 .. 0x7F_FFFF_F000  device and shared regions, where the manifest maps them
//! 0x7F_FFFF_F000               a device server's or vmm's state page (`state:<server>`, read-write)
//! ```

/// The boot-info page.
pub const BOOTINFO_VA: u64 = 0x0010_0000;
/// The IPC buffer.
pub const IPC_BUFFER_VA: u64 = 0x0010_1000;
/// The highest stack address (exclusive); the stack grows down from here.
pub const STACK_TOP: u64 = 0x0020_0000;
/// The lowest address a stack may reach.
pub const STACK_LIMIT: u64 = 0x0011_0000;
/// Where server images are linked.
pub const IMAGE_BASE: u64 = 0x0020_0000;
/// The end of the image window.
pub const IMAGE_END: u64 = 0x1000_0000;
/// The start of the heap.
pub const HEAP_BASE: u64 = 0x1000_0000;
/// The end of the heap window.
pub const HEAP_END: u64 = 0x4000_0000;
/// The lowest address a manifest may map a region at.
pub const REGION_WINDOW_BASE: u64 = 0x4000_0000;
/// The end of a server's address space (39-bit IPA).
pub const ADDRESS_SPACE_END: u64 = 1 << 39;
/// The page size.
pub const PAGE_SIZE: u64 = 4096;
/// Where the manifest compiler maps a server's state page (`state:<server>`, a RAM region of
/// its own that outlives the server's restarts; device servers and vmms have one): the last
/// page of the address space (docs/ARCHITECTURE.md, "Restart-safe state").
pub const STATE_PAGE_VA: u64 = ADDRESS_SPACE_END - PAGE_SIZE;
/// The end of the window manifest regions are mapped in: below the state page, in every
/// server, so that no manifest mapping can reach it.
pub const REGION_WINDOW_END: u64 = STATE_PAGE_VA;
