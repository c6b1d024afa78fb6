//! The driver's DMA memory: two RAM regions the manifest maps into the driver, each also given
//! as a frame capability (`frames = [...]`) whose physical address `FrameGetAddress` answers.
//!
//! - The **pool** is private to the driver. virtio-drivers' `Hal::dma_alloc` (the virtqueue's
//!   descriptor table and rings) is a bump allocator over its pages, never freed: the queue
//!   lives as long as the server, and a restarted server starts the allocator afresh after
//!   resetting the device, which stops the device using the old queue (virtio 1.1 §4.2.2:
//!   writing 0 to the `Status` register resets the device). The pool's last page is the **bounce area**:
//!   virtio-drivers passes the request header and status byte of each request from the stack,
//!   whose physical address nobody knows, so `Hal::share` copies such buffers there and
//!   `Hal::unshare` copies them back (its documented "copying it to a special region").
//!   Bounced buffers are released together once none is outstanding; one request at a time
//!   uses three at most.
//! - The **window** is shared with the client: each request's data is read into or written
//!   from it directly, by its physical address, so no data is copied. The client cannot touch
//!   the pool, so it can neither rewrite a descriptor nor point the device anywhere else.
//!
//! Nothing here touches memory: [`DmaState`] answers addresses, and the server copies.

/// The page size the regions and virtio-drivers' allocations are counted in.
pub const PAGE_SIZE: u64 = 4096;
/// The bounce area: the pool's last page.
pub const BOUNCE_BYTES: u64 = PAGE_SIZE;
/// Alignment of each bounced buffer (the largest virtio-blk header field is 8 bytes; 16 keeps
/// each buffer in its own naturally aligned slot).
pub const BOUNCE_ALIGN: u64 = 16;

/// Memory seen by the driver at `va` and by the device at `pa`, `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Where the server maps it.
    pub va: u64,
    /// Its physical address (the device's view: no IOMMU).
    pub pa: u64,
    /// Its size in bytes.
    pub size: u64,
}

impl Window {
    /// The physical address of `[va, va + len)` when all of it lies inside the window.
    pub fn pa_of(&self, va: u64, len: u64) -> Option<u64> {
        let offset = va.checked_sub(self.va)?;
        (offset.checked_add(len)? <= self.size).then(|| self.pa + offset)
    }

    /// The server's address of `[pa, pa + len)` when all of it lies inside the window.
    pub fn va_of(&self, pa: u64, len: u64) -> Option<u64> {
        let offset = pa.checked_sub(self.pa)?;
        (offset.checked_add(len)? <= self.size).then(|| self.va + offset)
    }

    /// `len` bytes from `offset` inside the window.
    pub fn part(&self, offset: u64, len: u64) -> Option<Window> {
        (offset.checked_add(len)? <= self.size).then(|| Window {
            va: self.va + offset,
            pa: self.pa + offset,
            size: len,
        })
    }

    fn end_va(&self) -> Option<u64> {
        self.va.checked_add(self.size)
    }

    fn end_pa(&self) -> Option<u64> {
        self.pa.checked_add(self.size)
    }

    fn overlaps(&self, other: &Window) -> bool {
        let (Some(end), Some(other_end)) = (self.end_va(), other.end_va()) else {
            return true;
        };
        let (Some(pa_end), Some(other_pa_end)) = (self.end_pa(), other.end_pa()) else {
            return true;
        };
        (self.va < other_end && other.va < end) || (self.pa < other_pa_end && other.pa < pa_end)
    }
}

/// Why the regions cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// The pool is not page aligned (address or size) or wraps the address space.
    Misaligned,
    /// The pool has no page for virtqueues besides the bounce page.
    PoolTooSmall,
    /// The window overlaps the pool (in the server's addresses or physically).
    Overlap,
}

/// How a buffer is given to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// The buffer is DMA memory already: the device uses it at `pa`.
    Direct {
        /// Its physical address.
        pa: u64,
    },
    /// The buffer was given a copy in the bounce area, at `va` in the server and `pa` for the
    /// device: the server copies the buffer there now (and back on unshare when the device
    /// writes it).
    Bounced {
        /// The copy's physical address.
        pa: u64,
        /// The copy's address in the server.
        va: u64,
    },
}

impl Shared {
    /// The address the device is given.
    pub fn pa(&self) -> u64 {
        match *self {
            Self::Direct { pa } | Self::Bounced { pa, .. } => pa,
        }
    }
}

/// The allocator and translator behind the server's `Hal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaState {
    /// The pool without its bounce page.
    queues: Window,
    /// Bytes of `queues` handed out.
    allocated: u64,
    bounce: Window,
    /// Bytes of `bounce` in use.
    bounce_used: u64,
    /// Bounced buffers not yet unshared.
    bounce_outstanding: u32,
    window: Option<Window>,
}

impl DmaState {
    /// The state over `pool` (private) and `window` (shared with the client, if any).
    pub fn new(pool: Window, window: Option<Window>) -> Result<Self, DmaError> {
        if !pool.va.is_multiple_of(PAGE_SIZE)
            || !pool.pa.is_multiple_of(PAGE_SIZE)
            || !pool.size.is_multiple_of(PAGE_SIZE)
            || pool.end_va().is_none()
            || pool.end_pa().is_none()
        {
            return Err(DmaError::Misaligned);
        }
        if pool.size < BOUNCE_BYTES + PAGE_SIZE {
            return Err(DmaError::PoolTooSmall);
        }
        if window.is_some_and(|window| window.overlaps(&pool)) {
            return Err(DmaError::Overlap);
        }
        let queue_bytes = pool.size - BOUNCE_BYTES;
        Ok(Self {
            queues: Window {
                size: queue_bytes,
                ..pool
            },
            allocated: 0,
            bounce: Window {
                va: pool.va + queue_bytes,
                pa: pool.pa + queue_bytes,
                size: BOUNCE_BYTES,
            },
            bounce_used: 0,
            bounce_outstanding: 0,
            window,
        })
    }

    /// The window shared with the client.
    pub fn window(&self) -> Option<Window> {
        self.window
    }

    /// `pages` fresh contiguous pages of the pool (for `Hal::dma_alloc`; the server zeroes
    /// them), or `None` when the pool is used up or `pages` is 0.
    pub fn alloc(&mut self, pages: u64) -> Option<Window> {
        if pages == 0 {
            return None;
        }
        let bytes = pages.checked_mul(PAGE_SIZE)?;
        let pages = self.queues.part(self.allocated, bytes)?;
        self.allocated += bytes;
        Some(pages)
    }

    /// Bytes of the pool still free for [`DmaState::alloc`].
    pub fn free_bytes(&self) -> u64 {
        self.queues.size - self.allocated
    }

    /// How the device reaches the buffer `[va, va + len)`: directly when it lies in the window
    /// or the pool, else through a copy in the bounce area; `None` when it is empty or the
    /// bounce area has no room (a buffer of request data never bounces: the server only gives
    /// the device window buffers).
    pub fn share(&mut self, va: u64, len: u64) -> Option<Shared> {
        if len == 0 {
            return None;
        }
        let direct = self.window.and_then(|window| window.pa_of(va, len));
        if let Some(pa) = direct.or_else(|| self.queues.pa_of(va, len)) {
            return Some(Shared::Direct { pa });
        }
        let start = self.bounce_used.next_multiple_of(BOUNCE_ALIGN);
        let copy = self.bounce.part(start, len)?;
        self.bounce_used = start + len;
        self.bounce_outstanding += 1;
        Some(Shared::Bounced {
            pa: copy.pa,
            va: copy.va,
        })
    }

    /// Ends the sharing of the buffer the device knew at `pa`: the server's address of the
    /// copy to copy back from when it was bounced, `None` when it was direct. The bounce area
    /// is reused from its start once no bounced buffer is outstanding.
    pub fn unshare(&mut self, pa: u64, len: u64) -> Option<u64> {
        let va = self.bounce.va_of(pa, len.max(1))?;
        self.bounce_outstanding = self.bounce_outstanding.saturating_sub(1);
        if self.bounce_outstanding == 0 {
            self.bounce_used = 0;
        }
        Some(va)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 64 KiB of pool at VA 0x4010_0000 (PA 0x4800_0000) and a 128 KiB window at VA 0x4020_0000
    /// (PA 0x4900_0000).
    const POOL: Window = Window {
        va: 0x4010_0000,
        pa: 0x4800_0000,
        size: 0x10000,
    };
    const WINDOW: Window = Window {
        va: 0x4020_0000,
        pa: 0x4900_0000,
        size: 0x20000,
    };

    fn state() -> DmaState {
        DmaState::new(POOL, Some(WINDOW)).unwrap()
    }

    #[test]
    fn windows_translate_whole_buffers_only() {
        assert_eq!(WINDOW.pa_of(0x4020_0000, 1), Some(0x4900_0000));
        assert_eq!(WINDOW.pa_of(0x4021_FE00, 0x200), Some(0x4901_FE00));
        assert_eq!(
            WINDOW.pa_of(0x4021_FE01, 0x200),
            None,
            "one byte past the end"
        );
        assert_eq!(WINDOW.pa_of(0x401F_FFFF, 2), None, "starts below");
        assert_eq!(WINDOW.pa_of(u64::MAX, 2), None);
        assert_eq!(WINDOW.va_of(0x4901_0000, 0x10), Some(0x4021_0000));
        assert_eq!(WINDOW.va_of(0x4902_0000, 1), None);
        assert_eq!(WINDOW.part(0x1000, 0x1000).map(|w| w.pa), Some(0x4900_1000));
        assert_eq!(WINDOW.part(0x1F000, 0x1001), None);
    }

    #[test]
    fn allocations_are_contiguous_pages_below_the_bounce_page() {
        let mut dma = state();
        assert_eq!(dma.free_bytes(), 0x10000 - BOUNCE_BYTES);
        let first = dma.alloc(2).unwrap();
        assert_eq!((first.va, first.pa, first.size), (POOL.va, POOL.pa, 0x2000));
        let second = dma.alloc(1).unwrap();
        assert_eq!(second.pa, POOL.pa + 0x2000, "right after the first");
        // 15 pages for queues in all: 12 left.
        assert_eq!(dma.alloc(13), None);
        let rest = dma.alloc(12).unwrap();
        assert_eq!(rest.pa + rest.size, POOL.pa + POOL.size - BOUNCE_BYTES);
        assert_eq!(dma.alloc(1), None, "the bounce page is never allocated");
        assert_eq!(state().alloc(0), None);
        assert_eq!(state().alloc(u64::MAX), None);
    }

    #[test]
    fn window_and_pool_buffers_are_direct_and_others_bounce() {
        let mut dma = state();
        assert_eq!(
            dma.share(WINDOW.va + 0x200, 0x400),
            Some(Shared::Direct {
                pa: WINDOW.pa + 0x200
            })
        );
        assert_eq!(
            dma.share(POOL.va + 0x10, 16),
            Some(Shared::Direct { pa: POOL.pa + 0x10 })
        );
        let bounce_va = POOL.va + POOL.size - BOUNCE_BYTES;
        let bounce_pa = POOL.pa + POOL.size - BOUNCE_BYTES;
        // A 16-byte header and a 1-byte status from the stack.
        let header = dma.share(0x1F_F000, 16).unwrap();
        assert_eq!(
            header,
            Shared::Bounced {
                pa: bounce_pa,
                va: bounce_va
            }
        );
        let status = dma.share(0x1F_F100, 1).unwrap();
        assert_eq!(status.pa(), bounce_pa + 16, "its own aligned slot");
        // Direct buffers unshare with nothing to copy back.
        assert_eq!(dma.unshare(WINDOW.pa + 0x200, 0x400), None);
        assert_eq!(dma.unshare(header.pa(), 16), Some(bounce_va));
        // One is still out: the next bounce does not reuse the area.
        assert_eq!(dma.share(0x1F_F200, 16).unwrap().pa(), bounce_pa + 32);
        assert_eq!(dma.unshare(status.pa(), 1), Some(bounce_va + 16));
        assert_eq!(dma.unshare(bounce_pa + 32, 16), Some(bounce_va + 32));
        // None out: back to the start.
        assert_eq!(dma.share(0x1F_F300, 16).unwrap().pa(), bounce_pa);
    }

    #[test]
    fn the_bounce_area_refuses_what_does_not_fit() {
        let mut dma = state();
        assert_eq!(dma.share(0x1000, 0), None);
        assert_eq!(dma.share(0x1000, BOUNCE_BYTES + 1), None);
        assert!(dma.share(0x1000, BOUNCE_BYTES).is_some());
        assert_eq!(dma.share(0x2000, 1), None, "full until it is unshared");
        // A buffer straddling the window's end is not direct, and too large to bounce.
        assert_eq!(dma.share(WINDOW.va + WINDOW.size - 0x100, 0x2000), None);
    }

    #[test]
    fn bad_regions_are_refused() {
        let misaligned = Window {
            pa: POOL.pa + 8,
            ..POOL
        };
        assert_eq!(DmaState::new(misaligned, None), Err(DmaError::Misaligned));
        let one_page = Window {
            size: PAGE_SIZE,
            ..POOL
        };
        assert_eq!(DmaState::new(one_page, None), Err(DmaError::PoolTooSmall));
        let wraps = Window {
            va: u64::MAX - 0xFFF,
            ..POOL
        };
        assert_eq!(DmaState::new(wraps, None), Err(DmaError::Misaligned));
        let same_memory = Window {
            va: 0x5000_0000,
            ..POOL
        };
        assert_eq!(
            DmaState::new(POOL, Some(same_memory)),
            Err(DmaError::Overlap),
            "physically the pool: the client would reach the descriptors"
        );
        let same_addresses = Window {
            pa: 0x6000_0000,
            ..POOL
        };
        assert_eq!(
            DmaState::new(POOL, Some(same_addresses)),
            Err(DmaError::Overlap)
        );
        assert!(DmaState::new(POOL, None).is_ok_and(|dma| dma.window().is_none()));
    }
}
