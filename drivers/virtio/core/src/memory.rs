//! Guest RAM as the device sees it: a window of guest-physical addresses, read and written by
//! copy. Every address the driver hands the device (rings, descriptors, buffers) goes through
//! here, so nothing outside the window is ever touched.

/// Why a guest-memory access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// `address + length` does not fit in 64 bits.
    Overflow { address: u64, length: u64 },
    /// Some byte of `[address, address + length)` is outside guest RAM.
    OutsideRam { address: u64, length: u64 },
}

/// The guest-physical range that is RAM: `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RamWindow {
    base: u64,
    size: u64,
}

impl RamWindow {
    /// The window `[base, base + size)`; `None` when it would wrap past the top of the address
    /// space.
    pub const fn new(base: u64, size: u64) -> Option<Self> {
        match base.checked_add(size) {
            Some(_) => Some(Self { base, size }),
            None => None,
        }
    }

    /// The first guest-physical address of RAM.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// RAM's size in bytes.
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// The offset from `base` of `[address, address + length)` when all of it is RAM. An empty
    /// range is checked as its start address (it must lie in `[base, base + size]`).
    pub const fn offset_of(&self, address: u64, length: u64) -> Result<u64, MemoryError> {
        let Some(end) = address.checked_add(length) else {
            return Err(MemoryError::Overflow { address, length });
        };
        // `new` guarantees `base + size` does not wrap.
        if address < self.base || end > self.base + self.size {
            return Err(MemoryError::OutsideRam { address, length });
        }
        Ok(address - self.base)
    }
}

/// Guest RAM, mapped into the device server. Implementations check every access with
/// [`RamWindow::offset_of`] and copy: the guest may change its memory at any moment, so the
/// device reads each field once into its own variables and validates the copy.
pub trait GuestMemory {
    /// The RAM window this memory covers.
    fn window(&self) -> RamWindow;

    /// Fills `buffer` from guest-physical `address` onwards.
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError>;

    /// Writes `bytes` at guest-physical `address` onwards.
    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError>;

    /// Whether `[address, address + length)` is all RAM, without touching it.
    fn check(&self, address: u64, length: u64) -> Result<(), MemoryError> {
        self.window().offset_of(address, length).map(|_| ())
    }

    /// A little-endian `u16` (virtio 1.2 §1.4: all fields are little-endian).
    fn read_u16(&self, address: u64) -> Result<u16, MemoryError> {
        let mut bytes = [0; 2];
        self.read(address, &mut bytes)?;
        Ok(u16::from_le_bytes(bytes))
    }

    /// A little-endian `u32`.
    fn read_u32(&self, address: u64) -> Result<u32, MemoryError> {
        let mut bytes = [0; 4];
        self.read(address, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// A little-endian `u64`.
    fn read_u64(&self, address: u64) -> Result<u64, MemoryError> {
        let mut bytes = [0; 8];
        self.read(address, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes a little-endian `u16`.
    fn write_u16(&mut self, address: u64, value: u16) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }

    /// Writes a little-endian `u32`.
    fn write_u32(&mut self, address: u64, value: u32) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }
}

/// Guest RAM held in a byte slice: `bytes[0]` is guest-physical `base`. For tests, and for any
/// caller that owns a plain copy of guest memory.
#[derive(Debug)]
pub struct SliceMemory<'a> {
    window: RamWindow,
    bytes: &'a mut [u8],
}

impl<'a> SliceMemory<'a> {
    /// RAM at `base` holding `bytes`; `None` when `base + bytes.len()` would wrap.
    pub fn new(base: u64, bytes: &'a mut [u8]) -> Option<Self> {
        let size = u64::try_from(bytes.len()).ok()?;
        Some(Self {
            window: RamWindow::new(base, size)?,
            bytes,
        })
    }

    /// The bytes `[offset, offset + length)` of the slice, when `address` and `length` are RAM.
    fn range(&self, address: u64, length: usize) -> Result<core::ops::Range<usize>, MemoryError> {
        let length64 = length as u64;
        let offset = self.window.offset_of(address, length64)?;
        // The offset and end are at most `bytes.len()`, so they fit in usize.
        let start = offset as usize;
        Ok(start..start + length)
    }
}

impl GuestMemory for SliceMemory<'_> {
    fn window(&self) -> RamWindow {
        self.window
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        let range = self.range(address, buffer.len())?;
        let source = self.bytes.get(range).ok_or(MemoryError::OutsideRam {
            address,
            length: buffer.len() as u64,
        })?;
        buffer.copy_from_slice(source);
        Ok(())
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        let range = self.range(address, bytes.len())?;
        let target = self.bytes.get_mut(range).ok_or(MemoryError::OutsideRam {
            address,
            length: bytes.len() as u64,
        })?;
        target.copy_from_slice(bytes);
        Ok(())
    }
}
