//! The virtio-mmio transport, version 2 (virtio 1.2 §4.2): the register window a driver sees,
//! feature negotiation, the device status rules and the queues' configuration.
//!
//! | offset | register | access | model |
//! |---|---|---|---|
//! | 0x000 | MagicValue | R | 0x74726976 ("virt") |
//! | 0x004 | Version | R | 2 |
//! | 0x008 | DeviceID | R | the device type (§5: 2 block, 3 console) |
//! | 0x00c | VendorID | R | [`VENDOR_ID`] |
//! | 0x010 | DeviceFeatures | R | the 32 feature bits selected by DeviceFeaturesSel (0 beyond bit 63) |
//! | 0x014 | DeviceFeaturesSel | W | stored |
//! | 0x020 | DriverFeatures | W | the selected 32 bits; ignored once FEATURES_OK is set |
//! | 0x024 | DriverFeaturesSel | W | stored |
//! | 0x030 | QueueSel | W | stored; queue registers of a queue that does not exist read 0 and ignore writes |
//! | 0x034 | QueueNumMax | R | [`QUEUE_SIZE_MAX`], 0 for a queue that does not exist |
//! | 0x038 | QueueNum | W | stored while the queue is not ready |
//! | 0x044 | QueueReady | RW | 1: validated, then ready (see below); 0: stops the queue |
//! | 0x050 | QueueNotify | W | [`Event::Notify`] for a ready queue after DRIVER_OK, otherwise ignored |
//! | 0x060 | InterruptStatus | R | bit 0 used buffer, bit 1 configuration change |
//! | 0x064 | InterruptACK | W | clears the bits written |
//! | 0x070 | Status | RW | the device status rules below; 0 resets ([`Event::Reset`]) |
//! | 0x080..0x0a4 | QueueDesc/Driver/Device Low/High | W | stored while the queue is not ready |
//! | 0x0fc | ConfigGeneration | R | 0: the configuration never changes under the driver |
//! | 0x100.. | Config | R | the device's configuration structure, given by the caller |
//!
//! Widths (§4.2.2.2): the registers take 32-bit aligned accesses only; the configuration space
//! takes 8, 16, 32 and 64-bit accesses aligned to their width, inside the structure. Anything
//! else — another width, an offset with no register, a read of a write-only register, a write
//! of a read-only one or of the configuration (no device here has writable fields) — is a
//! [`BusError`]: the driver "MUST NOT" do it, and the vmm then injects an abort.
//!
//! Status (§2.1, §3.1.1): bits are only ever added, never cleared, except by writing 0 (a
//! reset, §4.2.2.1: InterruptStatus and every QueueReady cleared). FEATURES_OK sticks only
//! after ACKNOWLEDGE and DRIVER, and only if the driver accepted a subset of the offered
//! features including VIRTIO_F_VERSION_1 (§6.2: a device may refuse to work for a driver
//! without it); otherwise it reads back clear, which is how a device refuses (§3.1.1 step 6).
//! DRIVER_OK sticks only after FEATURES_OK. DEVICE_NEEDS_RESET is the device's, set when a
//! queue cannot be made ready or a driver breaks one (§2.1.2), with a configuration-change
//! interrupt once DRIVER_OK is set.
//!
//! Queues (§4.2.3.2): QueueReady = 1 is accepted only after FEATURES_OK and only for a queue
//! whose size and areas pass [`Queue::validate`] against guest RAM; otherwise QueueReady stays
//! 0 and DEVICE_NEEDS_RESET is set, so a driver that reads back either learns it. A ready
//! queue's registers ignore writes (the driver must not change a queue in use). The device
//! takes no buffers before DRIVER_OK (§3.1.1): notifications before it are ignored, and
//! [`Event::DriverOk`] tells the device to look at its queues then.

use crate::memory::{GuestMemory, RamWindow};
use crate::queue::{Chain, QUEUE_SIZE_MAX, Queue};
use device_api::Response;

/// The answer to one `device_api` request from a device's own read and write: the value read
/// (`Some(Some(v))`), a write accepted or a line query (`Some(None)`), or a bus error (`None`),
/// with the interrupt line's level after it.
pub fn respond(outcome: Option<Option<u64>>, line: bool) -> Response {
    match outcome {
        Some(Some(value)) => Response::ValueLine { value, line },
        Some(None) => Response::DoneLine { line },
        None => Response::BusError,
    }
}

/// MagicValue: "virt" in little-endian ASCII (§4.2.2).
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// The transport version: 2, the non-legacy interface (§4.2.2).
pub const VERSION: u32 = 2;
/// VendorID: "hvkv", this hypervisor's (any value is allowed, §4.2.2).
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"hvkv");
/// The window each device answers (the device tree's `reg` size).
pub const WINDOW_BYTES: u32 = 0x200;
/// Where the device-specific configuration starts.
pub const CONFIG_OFFSET: u32 = 0x100;
/// The most queues one transport holds (the console's two).
pub const MAX_QUEUES: usize = 2;

/// Register offsets (§4.2.2, table 4.1).
pub mod register {
    pub const MAGIC_VALUE: u32 = 0x000;
    pub const VERSION: u32 = 0x004;
    pub const DEVICE_ID: u32 = 0x008;
    pub const VENDOR_ID: u32 = 0x00c;
    pub const DEVICE_FEATURES: u32 = 0x010;
    pub const DEVICE_FEATURES_SEL: u32 = 0x014;
    pub const DRIVER_FEATURES: u32 = 0x020;
    pub const DRIVER_FEATURES_SEL: u32 = 0x024;
    pub const QUEUE_SEL: u32 = 0x030;
    pub const QUEUE_NUM_MAX: u32 = 0x034;
    pub const QUEUE_NUM: u32 = 0x038;
    pub const QUEUE_READY: u32 = 0x044;
    pub const QUEUE_NOTIFY: u32 = 0x050;
    pub const INTERRUPT_STATUS: u32 = 0x060;
    pub const INTERRUPT_ACK: u32 = 0x064;
    pub const STATUS: u32 = 0x070;
    pub const QUEUE_DESC_LOW: u32 = 0x080;
    pub const QUEUE_DESC_HIGH: u32 = 0x084;
    pub const QUEUE_DRIVER_LOW: u32 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u32 = 0x094;
    pub const QUEUE_DEVICE_LOW: u32 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u32 = 0x0a4;
    pub const CONFIG_GENERATION: u32 = 0x0fc;
}

/// Device status bits (§2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    pub const FAILED: u8 = 128;
    /// The bits a driver may set.
    pub const DRIVER_BITS: u8 = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | FAILED;
}

/// InterruptStatus bits (§4.2.2).
pub mod interrupt {
    /// A used ring was updated.
    pub const USED_BUFFER: u32 = 1;
    /// The configuration changed (also how DEVICE_NEEDS_RESET is announced, §2.1.2).
    pub const CONFIG_CHANGE: u32 = 2;
}

/// Device-independent feature bits (§6).
pub mod feature {
    /// VIRTIO_F_VERSION_1 (bit 32): the non-legacy interface. Always offered, always required.
    pub const VERSION_1: u64 = 1 << 32;
}

/// What a register write asks of the device beyond the transport's own state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The driver notified this queue (ready, after DRIVER_OK): process it.
    Notify(u16),
    /// DRIVER_OK was just set: process every queue (buffers made available earlier were not
    /// notified, as notifications before DRIVER_OK are ignored).
    DriverOk,
    /// Status 0: the device was reset; the device drops its own state.
    Reset,
}

/// An access the window does not take: the vmm answers it as a bus error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusError;

/// The transport's state for one device. Plain data (`Clone`, serde): a server may keep a
/// copy where a restart finds it, then call [`Transport::recover`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transport {
    device_id: u32,
    device_features: u64,
    queue_count: u16,
    ram: RamWindow,
    driver_features: u64,
    device_features_select: u32,
    driver_features_select: u32,
    queue_select: u32,
    queues: [Queue; MAX_QUEUES],
    interrupt_status: u32,
    status: u8,
}

impl Transport {
    /// A device of type `device_id` offering `device_features` (VIRTIO_F_VERSION_1 is always
    /// added), with `queue_count` queues (at most [`MAX_QUEUES`]), whose driver's buffers must
    /// lie in `ram`. In its reset state.
    pub fn new(device_id: u32, device_features: u64, queue_count: u16, ram: RamWindow) -> Self {
        Self {
            device_id,
            device_features: device_features | feature::VERSION_1,
            queue_count: queue_count.min(MAX_QUEUES as u16),
            ram,
            driver_features: 0,
            device_features_select: 0,
            driver_features_select: 0,
            queue_select: 0,
            queues: [Queue::new(); MAX_QUEUES],
            interrupt_status: 0,
            status: 0,
        }
    }

    /// Answers a read of `width` bytes at `offset` in the window; `config` is the device's
    /// configuration structure (at most 0x100 bytes are visible). `None` is a bus error.
    pub fn read(&self, offset: u32, width: u8, config: &[u8]) -> Option<u64> {
        if offset >= CONFIG_OFFSET {
            return read_config(config, offset, width);
        }
        if width != 4 || !offset.is_multiple_of(4) {
            return None;
        }
        let selected = self.selected_queue();
        let value = match offset {
            register::MAGIC_VALUE => MAGIC_VALUE,
            register::VERSION => VERSION,
            register::DEVICE_ID => self.device_id,
            register::VENDOR_ID => VENDOR_ID,
            register::DEVICE_FEATURES => match self.device_features_select {
                0 => self.device_features as u32,
                1 => (self.device_features >> 32) as u32,
                _ => 0,
            },
            register::QUEUE_NUM_MAX => selected.map_or(0, |_| u32::from(QUEUE_SIZE_MAX)),
            register::QUEUE_READY => selected.map_or(0, |queue| u32::from(queue.is_ready())),
            register::INTERRUPT_STATUS => self.interrupt_status,
            register::STATUS => u32::from(self.status),
            register::CONFIG_GENERATION => 0,
            _ => return None,
        };
        Some(u64::from(value))
    }

    /// Applies a write of the low `width` bytes of `value` at `offset`.
    pub fn write(&mut self, offset: u32, width: u8, value: u64) -> Result<Option<Event>, BusError> {
        if width != 4 || !offset.is_multiple_of(4) || offset >= CONFIG_OFFSET {
            return Err(BusError);
        }
        let value = value as u32;
        match offset {
            register::DEVICE_FEATURES_SEL => self.device_features_select = value,
            register::DRIVER_FEATURES => self.write_driver_features(value),
            register::DRIVER_FEATURES_SEL => self.driver_features_select = value,
            register::QUEUE_SEL => self.queue_select = value,
            register::QUEUE_NUM => {
                if let Some(queue) = self.selected_idle_queue() {
                    queue.set_size(value);
                }
            }
            register::QUEUE_READY => self.write_queue_ready(value),
            register::QUEUE_NOTIFY => return Ok(self.notification(value)),
            register::INTERRUPT_ACK => self.interrupt_status &= !value,
            register::STATUS => return Ok(self.write_status(value)),
            register::QUEUE_DESC_LOW
            | register::QUEUE_DESC_HIGH
            | register::QUEUE_DRIVER_LOW
            | register::QUEUE_DRIVER_HIGH
            | register::QUEUE_DEVICE_LOW
            | register::QUEUE_DEVICE_HIGH => {
                let area = ((offset - register::QUEUE_DESC_LOW) / 0x10) as usize;
                let high = offset % 8 == 4;
                if let Some(queue) = self.selected_idle_queue() {
                    queue.set_area_half(area, high, value);
                }
            }
            _ => return Err(BusError),
        }
        Ok(None)
    }

    /// Whether `saved` is a state of this same device (type, offered features, queue count,
    /// guest RAM window), so that a restarted server may take it over.
    pub fn same_device(&self, saved: &Transport) -> bool {
        (
            self.device_id,
            self.device_features,
            self.queue_count,
            self.ram,
        ) == (
            saved.device_id,
            saved.device_features,
            saved.queue_count,
            saved.ram,
        )
    }

    /// The device's interrupt line: InterruptStatus is not zero (§4.2.2; the device tree
    /// declares it edge-rising, so the vmm signals each rise).
    pub const fn interrupt_line(&self) -> bool {
        self.interrupt_status != 0
    }

    /// The Status register.
    pub const fn status(&self) -> u8 {
        self.status
    }

    /// The features the driver accepted (final once FEATURES_OK is set).
    pub const fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// The features offered.
    pub const fn device_features(&self) -> u64 {
        self.device_features
    }

    /// Queue `index`'s configuration and position, if the device has that queue.
    pub fn queue(&self, index: u16) -> Option<&Queue> {
        self.queues
            .get(usize::from(index))
            .filter(|_| index < self.queue_count)
    }

    /// Queue `index`, when the device may use it now: DRIVER_OK set, neither FAILED nor
    /// DEVICE_NEEDS_RESET, the queue ready and not broken.
    pub fn active_queue_mut(&mut self, index: u16) -> Option<&mut Queue> {
        let blocked = status::FAILED | status::DEVICE_NEEDS_RESET;
        if self.status & status::DRIVER_OK == 0 || self.status & blocked != 0 {
            return None;
        }
        self.queues
            .get_mut(usize::from(index))
            .filter(|queue| index < self.queue_count && queue.is_ready() && !queue.is_broken())
    }

    /// Sets DEVICE_NEEDS_RESET, announced by a configuration-change interrupt once the driver
    /// is running (§2.1.2).
    pub fn set_needs_reset(&mut self) {
        self.status |= status::DEVICE_NEEDS_RESET;
        if self.status & status::DRIVER_OK != 0 {
            self.interrupt_status |= interrupt::CONFIG_CHANGE;
        }
    }

    /// Takes one available chain of queue `index`, lets `handle` serve it (returning how many
    /// bytes it wrote into the chain's writable buffers), completes it, and raises the
    /// used-buffer interrupt if the driver wants it. A malformed chain is handed over too,
    /// with [`Chain::error`] set: `handle` answers it as it can, and it is completed all the
    /// same. A queue-level error stops the queue and sets DEVICE_NEEDS_RESET. `false` when no
    /// chain was taken.
    pub fn process_one<M: GuestMemory>(
        &mut self,
        index: u16,
        memory: &mut M,
        chain: &mut Chain,
        handle: impl FnOnce(&mut M, &Chain) -> u32,
    ) -> bool {
        let Some(queue) = self.active_queue_mut(index) else {
            return false;
        };
        let outcome = match queue.pop(memory, chain) {
            Ok(false) => return false,
            Ok(true) => {
                let written = handle(memory, chain).min(chain.writable_len());
                queue.push_used(memory, chain.head(), written)
            }
            Err(error) => Err(error),
        };
        let wants_interrupt = queue.wants_interrupt(memory);
        match outcome {
            Ok(()) => {
                if wants_interrupt {
                    self.interrupt_status |= interrupt::USED_BUFFER;
                }
                true
            }
            Err(_) => {
                self.set_needs_reset();
                false
            }
        }
    }

    /// [`Transport::process_one`] until queue `index` has no chain available, or at most its
    /// size times (so a driver refilling the ring concurrently cannot keep the device here).
    /// Returns how many chains were completed.
    pub fn process<M: GuestMemory>(
        &mut self,
        index: u16,
        memory: &mut M,
        chain: &mut Chain,
        mut handle: impl FnMut(&mut M, &Chain) -> u32,
    ) -> usize {
        let limit = self.queue(index).map_or(0, |queue| queue.size());
        let mut completed = 0;
        while completed < limit && self.process_one(index, memory, chain, &mut handle) {
            completed += 1;
        }
        completed as usize
    }

    /// After a restart with a saved copy of this state: picks every ready queue's position up
    /// from guest memory ([`Queue::recover`] says why that is exact), and raises the
    /// used-buffer interrupt, since a completion published just before the crash may never
    /// have been signalled (a spurious one only makes the driver look at its rings). The
    /// device should then process every queue: a notification may have been lost too.
    pub fn recover(&mut self, memory: &impl GuestMemory) {
        if self.status & status::DRIVER_OK == 0 {
            // No chain is taken before DRIVER_OK: there is no position to recover.
            return;
        }
        let mut failed = false;
        for queue in self.queues.iter_mut().take(usize::from(self.queue_count)) {
            if queue.is_ready() && !queue.is_broken() {
                failed |= queue.recover(memory).is_err();
            }
        }
        if failed {
            self.set_needs_reset();
        }
        self.interrupt_status |= interrupt::USED_BUFFER;
    }

    fn selected_queue(&self) -> Option<&Queue> {
        u16::try_from(self.queue_select)
            .ok()
            .and_then(|index| self.queue(index))
    }

    /// The selected queue, if it exists and is not ready (its configuration may change).
    fn selected_idle_queue(&mut self) -> Option<&mut Queue> {
        let index = usize::try_from(self.queue_select).ok()?;
        if index >= usize::from(self.queue_count) {
            return None;
        }
        self.queues.get_mut(index).filter(|queue| !queue.is_ready())
    }

    fn write_driver_features(&mut self, value: u32) {
        if self.status & status::FEATURES_OK != 0 {
            // Negotiation is over (§3.1.1 step 5: no new features after FEATURES_OK).
            return;
        }
        let value = u64::from(value);
        match self.driver_features_select {
            0 => self.driver_features = (self.driver_features & !0xFFFF_FFFF) | value,
            1 => self.driver_features = (self.driver_features & 0xFFFF_FFFF) | (value << 32),
            _ => {}
        }
    }

    fn write_queue_ready(&mut self, value: u32) {
        let features_ok = self.status & status::FEATURES_OK != 0;
        let ram = self.ram;
        let Some(index) = u16::try_from(self.queue_select)
            .ok()
            .filter(|&index| index < self.queue_count)
        else {
            return;
        };
        let Some(queue) = self.queues.get_mut(usize::from(index)) else {
            return;
        };
        match value {
            0 => queue.disable(),
            1 if queue.is_ready() => {}
            1 => {
                let accepted = features_ok && queue.enable(ram).is_ok();
                if !accepted {
                    self.set_needs_reset();
                }
            }
            _ => {}
        }
    }

    fn notification(&self, value: u32) -> Option<Event> {
        // Without VIRTIO_F_NOTIFICATION_DATA the value is the queue's index (§4.2.2).
        let index = u16::try_from(value).ok()?;
        let blocked = status::FAILED | status::DEVICE_NEEDS_RESET;
        if self.status & status::DRIVER_OK == 0 || self.status & blocked != 0 {
            return None;
        }
        let queue = self.queue(index)?;
        (queue.is_ready() && !queue.is_broken()).then_some(Event::Notify(index))
    }

    fn write_status(&mut self, value: u32) -> Option<Event> {
        if value == 0 {
            self.reset();
            return Some(Event::Reset);
        }
        let old = self.status;
        let mut new = old | (value as u8 & status::DRIVER_BITS);
        let added = new & !old;
        if added & status::FEATURES_OK != 0 && !self.features_acceptable(new) {
            new &= !status::FEATURES_OK;
        }
        if added & status::DRIVER_OK != 0 && new & status::FEATURES_OK == 0 {
            new &= !status::DRIVER_OK;
        }
        self.status = new;
        (new & !old & status::DRIVER_OK != 0).then_some(Event::DriverOk)
    }

    fn features_acceptable(&self, new_status: u8) -> bool {
        let introduced = status::ACKNOWLEDGE | status::DRIVER;
        new_status & introduced == introduced
            && self.driver_features & !self.device_features == 0
            && self.driver_features & feature::VERSION_1 != 0
    }

    /// The reset state (§2.4, §4.2.2.1), keeping what the device is (its type, features,
    /// queue count and RAM window): status, features, selectors, every queue and
    /// InterruptStatus as [`Transport::new`] makes them. A driver's write of 0 to Status does
    /// this, and so does the VM's reset (`Request::Reset`, through the device's `reset`).
    pub fn reset(&mut self) {
        *self = Self::new(
            self.device_id,
            self.device_features,
            self.queue_count,
            self.ram,
        );
    }
}

/// A read of the configuration structure: a width of 1, 2, 4 or 8 bytes, aligned to it, all
/// inside the structure and the window.
fn read_config(config: &[u8], offset: u32, width: u8) -> Option<u64> {
    if offset >= WINDOW_BYTES || !matches!(width, 1 | 2 | 4 | 8) {
        return None;
    }
    let start = usize::try_from(offset - CONFIG_OFFSET).ok()?;
    let width = usize::from(width);
    if !start.is_multiple_of(width) {
        return None;
    }
    let visible = config
        .get(..(WINDOW_BYTES - CONFIG_OFFSET) as usize)
        .unwrap_or(config);
    let bytes = visible.get(start..start.checked_add(width)?)?;
    let mut value = [0u8; 8];
    value.get_mut(..width)?.copy_from_slice(bytes);
    Some(u64::from_le_bytes(value))
}
