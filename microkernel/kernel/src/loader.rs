//! Server images: loading a server's ELF into fresh frames of its own VSpace at boot, and
//! resetting those frames from the pristine image on restart (code, data, bss, stack, heap,
//! IPC buffer and boot-info page: the whole memory, not just the program counter).

use crate::boot_alloc::{self, BootAllocator};
use abi::layout::{
    BOOTINFO_VA, HEAP_BASE, IMAGE_BASE, IMAGE_END, IPC_BUFFER_VA, PAGE_SIZE, STACK_TOP,
};
use kernel_core::boot_check::Why;
use kernel_core::elf::{self, ElfImage, MAX_SEGMENTS};
use kernel_core::stage2::{self, Attributes, MapError, MemoryKind};

/// Where a server's memory lives, and the pristine image to rebuild it from.
pub struct ServerImage {
    /// The server's manifest name.
    pub name: &'static str,
    /// The ELF file, inside the boot payload.
    pub file: &'static [u8],
    /// Its parsed segments.
    pub elf: ElfImage,
    /// Physical base of each segment's pages (contiguous per segment).
    pub segment_frames: [u64; MAX_SEGMENTS],
    /// Stack frames and size.
    pub stack: (u64, u64),
    /// Heap frames and size (size 0: none).
    pub heap: (u64, u64),
    /// The IPC buffer frame.
    pub ipc_buffer: u64,
    /// The boot-info frame and the blob written into it.
    pub bootinfo: (u64, &'static [u8]),
    /// The VSpace root (VTTBR value: VMID and stage-2 table).
    pub vttbr: u64,
}

const NORMAL_RW: Attributes = Attributes {
    writable: true,
    executable: false,
    kind: MemoryKind::Normal,
};
const NORMAL_RO: Attributes = Attributes {
    writable: false,
    executable: false,
    kind: MemoryKind::Normal,
};

fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE_SIZE)
}

/// Maps `count` contiguous frames from `pa` at `va`. Boot-time mapping of fresh ranges the
/// boot checks found disjoint cannot conflict; what can still fail is a table allocation, when
/// RAM runs out.
pub fn map_range(
    memory: &mut BootAllocator,
    root: u64,
    va: u64,
    pa: u64,
    count: u64,
    attributes: Attributes,
) -> Result<(), Why> {
    for page in 0..count {
        let offset = page * PAGE_SIZE;
        let at = va + offset;
        stage2::map_page(memory, root, at, pa + offset, attributes).map_err(
            |error| match error {
                MapError::OutOfTables => Why::OutOfMemory {
                    needed: 1,
                    free: memory.free_pages(),
                },
                error => Why::CannotMap { va: at, error },
            },
        )?;
    }
    Ok(())
}

/// Loads a server: allocates its VSpace and every frame, fills them, maps them. The boot checks
/// (`kernel_core::boot_check`) already accepted its image and boot info; running out of RAM is
/// what can still refuse it.
pub fn load(
    memory: &mut BootAllocator,
    name: &'static str,
    file: &'static [u8],
    vmid: u16,
    stack_bytes: u64,
    heap_bytes: u64,
    bootinfo: &'static [u8],
) -> Result<ServerImage, Why> {
    let elf = elf::parse(file, IMAGE_BASE, IMAGE_END).map_err(Why::BadImage)?;
    if bootinfo.len() > kernel_core::boot_check::MAX_BOOTINFO {
        return Err(Why::BootInfo {
            bytes: bootinfo.len(),
        });
    }
    let root = memory.pages(1)?;
    let mut image = ServerImage {
        name,
        file,
        elf,
        segment_frames: [0; MAX_SEGMENTS],
        stack: (memory.pages(pages(stack_bytes))?, stack_bytes),
        heap: (
            if heap_bytes > 0 {
                memory.pages(pages(heap_bytes))?
            } else {
                0
            },
            heap_bytes,
        ),
        ipc_buffer: memory.pages(1)?,
        bootinfo: (memory.pages(1)?, bootinfo),
        vttbr: (u64::from(vmid) << 48) | root,
    };
    for (index, segment) in elf.segments().iter().enumerate() {
        let count = pages(segment.page_end() - segment.page_start());
        let frames = memory.pages(count)?;
        image.segment_frames[index] = frames;
        let attributes = Attributes {
            writable: segment.writable,
            executable: segment.executable,
            kind: MemoryKind::Normal,
        };
        map_range(
            memory,
            root,
            segment.page_start(),
            frames,
            count,
            attributes,
        )?;
    }
    map_range(
        memory,
        root,
        STACK_TOP - stack_bytes,
        image.stack.0,
        pages(stack_bytes),
        NORMAL_RW,
    )?;
    if heap_bytes > 0 {
        map_range(
            memory,
            root,
            HEAP_BASE,
            image.heap.0,
            pages(heap_bytes),
            NORMAL_RW,
        )?;
    }
    map_range(memory, root, IPC_BUFFER_VA, image.ipc_buffer, 1, NORMAL_RW)?;
    map_range(memory, root, BOOTINFO_VA, image.bootinfo.0, 1, NORMAL_RO)?;
    image.fill();
    Ok(image)
}

impl ServerImage {
    /// Rewrites every frame of the server from the pristine image: segments copied, bss, stack,
    /// heap and IPC buffer zeroed, boot info rewritten. Cannot fail: every frame exists.
    pub fn fill(&self) {
        for (index, segment) in self.elf.segments().iter().enumerate() {
            let frames = self.segment_frames[index];
            boot_alloc::zero(frames, segment.page_end() - segment.page_start());
            let start = segment.offset as usize;
            let bytes = &self.file[start..start + segment.filesz as usize];
            boot_alloc::copy_to(frames + (segment.vaddr - segment.page_start()), bytes);
        }
        boot_alloc::zero(self.stack.0, self.stack.1);
        if self.heap.1 > 0 {
            boot_alloc::zero(self.heap.0, self.heap.1);
        }
        boot_alloc::zero(self.ipc_buffer, PAGE_SIZE);
        boot_alloc::zero(self.bootinfo.0, PAGE_SIZE);
        boot_alloc::copy_to(
            self.bootinfo.0,
            &(self.bootinfo.1.len() as u32).to_le_bytes(),
        );
        boot_alloc::copy_to(self.bootinfo.0 + 4, self.bootinfo.1);
    }

    /// The entry point.
    /// The physical ranges of its executable segments (what a restart rewrote as code).
    pub fn executable_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.elf
            .segments()
            .iter()
            .enumerate()
            .filter(|(_, segment)| segment.executable)
            .map(|(index, segment)| {
                (
                    self.segment_frames[index],
                    segment.page_end() - segment.page_start(),
                )
            })
    }

    pub fn entry(&self) -> u64 {
        self.elf.entry
    }
}
