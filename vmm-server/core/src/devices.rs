//! The device table: which device server answers MMIO in which IPA window.
//!
//! Windows never overlap (checked on insert), so an IPA belongs to at most one device and the
//! lookup order does not matter. An access is routed only when it lies entirely inside one
//! window; an access that straddles a window's end, or touches no window, is a hole and the
//! guest gets an abort. Offsets are `u32` (the `device_api` wire type), so a window is at most
//! 4 GiB. The table is small and fixed-size: a linear scan beats anything cleverer at this size.

use crate::layout::{STANDARD_DEVICES, VIRTIO_TRANSPORTS, Window, virtio_transport};
use abi::CPtr;

/// How many devices one VM can have: the standard ones and one per virtio-mmio transport.
pub const MAX_DEVICES: usize = STANDARD_DEVICES.len() + VIRTIO_TRANSPORTS;

/// One emulated device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Device {
    /// Its capability name in the vmm's manifest entry (for messages).
    pub name: &'static str,
    /// Where the guest sees it.
    pub window: Window,
    /// The slot of the endpoint its server answers `device_api::Mmio` on.
    pub endpoint: CPtr,
    /// The INTID its interrupt line drives (its answers carry the line level), if it has one.
    pub intid: Option<u32>,
}

/// Why a device was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DeviceError {
    /// Empty, wrapping, or larger than a `u32` offset can address.
    BadWindow,
    /// The window overlaps the named device's.
    Overlaps(&'static str),
    /// [`MAX_DEVICES`] devices already.
    Full,
    /// A virtio device whose window and INTID are not those of one virtio-mmio transport
    /// (`layout::virtio_transport`).
    NotATransport,
}

/// A device and the offset of an access inside its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The device.
    pub device: Device,
    /// The access's offset from the window's base.
    pub offset: u32,
}

/// IPA windows → device endpoints.
#[derive(Clone, Debug, Default)]
pub struct DeviceTable {
    devices: heapless::Vec<Device, MAX_DEVICES>,
}

impl DeviceTable {
    /// An empty table: every MMIO access is a hole.
    pub const fn new() -> Self {
        Self {
            devices: heapless::Vec::new(),
        }
    }

    /// The standard devices of `layout::STANDARD_DEVICES` whose capability `cap` finds (the
    /// server passes `userlib::caps::try_cap`); a device the manifest does not give the vmm is
    /// simply absent and its window is a hole.
    pub fn standard(mut cap: impl FnMut(&str) -> Option<CPtr>) -> Self {
        let mut table = Self::new();
        for &(name, window, intid) in STANDARD_DEVICES {
            if let Some(endpoint) = cap(name) {
                // The standard windows are distinct and fewer than MAX_DEVICES (tested).
                let _ = table.insert(Device {
                    name,
                    window,
                    endpoint,
                    intid,
                });
            }
        }
        table
    }

    /// Adds a virtio-mmio device of the VM's `devices` (the boot info's `DeviceInfo`: the
    /// window at `base`, `size` bytes, and `intid`), served on `endpoint`. The window and INTID
    /// must be exactly those of one transport (`layout::virtio_transport`), so a device can
    /// never take the PL011's or the vGIC's addresses or another line.
    pub fn insert_virtio(
        &mut self,
        name: &'static str,
        (base, size): (u64, u64),
        intid: u32,
        endpoint: CPtr,
    ) -> Result<(), DeviceError> {
        let window = Window { base, size };
        let is_transport = (0..VIRTIO_TRANSPORTS)
            .filter_map(virtio_transport)
            .any(|transport| transport == (window, intid));
        if !is_transport {
            return Err(DeviceError::NotATransport);
        }
        self.insert(Device {
            name,
            window,
            endpoint,
            intid: Some(intid),
        })
    }

    /// Adds a device whose window overlaps no other.
    pub fn insert(&mut self, device: Device) -> Result<(), DeviceError> {
        let window = device.window;
        if window.size == 0 || window.end().is_none() || window.size > 1 << 32 {
            return Err(DeviceError::BadWindow);
        }
        if let Some(other) = self.devices.iter().find(|d| d.window.overlaps(&window)) {
            return Err(DeviceError::Overlaps(other.name));
        }
        self.devices.push(device).map_err(|_| DeviceError::Full)
    }

    /// The device whose window holds all of `[ipa, ipa + width)`, and the offset.
    pub fn lookup(&self, ipa: u64, width: u8) -> Option<Route> {
        let device = *self
            .devices
            .iter()
            .find(|d| d.window.contains(ipa, u64::from(width)))?;
        let offset = u32::try_from(ipa - device.window.base).ok()?;
        Some(Route { device, offset })
    }

    /// The devices, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter()
    }

    /// How many devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::PL011;

    fn device(name: &'static str, base: u64, size: u64, endpoint: CPtr) -> Device {
        Device {
            name,
            window: Window { base, size },
            endpoint,
            intid: None,
        }
    }

    #[test]
    fn the_pl011_routes_to_its_cap_with_offsets() {
        let table = DeviceTable::standard(|name| (name == "pl011").then_some(9));
        assert_eq!(table.len(), 1);
        let route = table.lookup(0x0900_0018, 4).unwrap();
        assert_eq!(
            (route.device.endpoint, route.device.name, route.offset),
            (9, "pl011", 0x18)
        );
        assert_eq!(table.lookup(0x0900_0000, 1).unwrap().offset, 0);
        assert_eq!(table.lookup(0x0900_0FF8, 8).unwrap().offset, 0xFF8);
    }

    #[test]
    fn holes_and_straddling_accesses_have_no_route() {
        let table = DeviceTable::standard(|_| Some(9));
        assert_eq!(table.lookup(0x2000_0000, 4), None, "the GUEST-ABI hole");
        assert_eq!(table.lookup(0x0900_1000, 4), None, "just past the window");
        assert_eq!(table.lookup(0x08FF_FFFC, 4), None, "just before it");
        assert_eq!(table.lookup(0x0900_0FFE, 4), None, "straddles the end");
        assert_eq!(table.lookup(u64::MAX, 8), None);
    }

    #[test]
    fn without_the_cap_the_uart_window_is_a_hole() {
        let table = DeviceTable::standard(|_| None);
        assert!(table.is_empty());
        assert_eq!(table.lookup(PL011.base, 4), None);
    }

    #[test]
    fn overlapping_windows_are_refused() {
        let mut table = DeviceTable::new();
        table.insert(device("a", 0x1000_0000, 0x1000, 3)).unwrap();
        assert_eq!(
            table.insert(device("b", 0x1000_0FFF, 0x10, 4)),
            Err(DeviceError::Overlaps("a"))
        );
        assert_eq!(
            table.insert(device("c", 0x0FFF_F000, 0x2000, 4)),
            Err(DeviceError::Overlaps("a"))
        );
        assert_eq!(
            table.insert(device("d", 0x1000_0000, 0x1000, 4)),
            Err(DeviceError::Overlaps("a"))
        );
        // Touching is fine.
        table.insert(device("e", 0x1000_1000, 0x1000, 5)).unwrap();
        table.insert(device("f", 0x0FFF_F000, 0x1000, 6)).unwrap();
        assert_eq!(table.lookup(0x1000_1004, 4).unwrap().device.endpoint, 5);
        assert_eq!(table.lookup(0x0FFF_FFFC, 4).unwrap().device.endpoint, 6);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn bad_windows_and_a_full_table_are_refused() {
        let mut table = DeviceTable::new();
        assert_eq!(
            table.insert(device("z", 0x1000, 0, 3)),
            Err(DeviceError::BadWindow)
        );
        assert_eq!(
            table.insert(device("w", u64::MAX, 2, 3)),
            Err(DeviceError::BadWindow)
        );
        assert_eq!(
            table.insert(device("big", 0, (1 << 32) + 0x1000, 3)),
            Err(DeviceError::BadWindow)
        );
        for index in 0..MAX_DEVICES as u64 {
            table
                .insert(device("d", index * 0x1000, 0x1000, index))
                .unwrap();
        }
        assert_eq!(
            table.insert(device("x", 0x100_0000, 0x1000, 3)),
            Err(DeviceError::Full)
        );
    }

    #[test]
    fn virtio_devices_take_whole_transports_beside_the_pl011() {
        let mut table = DeviceTable::standard(|name| (name == "pl011").then_some(9));
        table
            .insert_virtio("vblk", (0x0A00_0000, 0x200), 48, 11)
            .unwrap();
        table
            .insert_virtio("vcon", (0x0A00_1000, 0x200), 49, 12)
            .unwrap();
        let route = table.lookup(0x0A00_1070, 4).unwrap();
        assert_eq!(
            (route.device.name, route.device.endpoint, route.offset),
            ("vcon", 12, 0x70)
        );
        assert_eq!(route.device.intid, Some(49));
        assert_eq!(table.lookup(0x0A00_01FC, 4).unwrap().device.name, "vblk");
        assert_eq!(
            table.lookup(0x0A00_01FE, 4),
            None,
            "runs past the end of the window"
        );
        assert_eq!(
            table.lookup(0x0A00_0400, 4),
            None,
            "a transport nobody serves"
        );
        assert_eq!(table.lookup(0x0900_0000, 4).unwrap().device.name, "pl011");
        // The same transport twice, another size, a misaligned base, the wrong INTID, the
        // PL011's window, a transport past the last: all refused.
        assert_eq!(
            table.insert_virtio("again", (0x0A00_0000, 0x200), 48, 13),
            Err(DeviceError::Overlaps("vblk"))
        );
        for (window, intid) in [
            ((0x0A00_0400, 0x400), 50),
            ((0x0A00_0480, 0x200), 50),
            ((0x0A00_0400, 0x200), 33),
            ((0x0900_0000, 0x200), 48),
            ((0x0A00_4000, 0x200), 80),
        ] {
            assert_eq!(
                table.insert_virtio("bad", window, intid, 13),
                Err(DeviceError::NotATransport),
                "{window:x?} INTID {intid}"
            );
        }
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn every_transport_fits_beside_the_standard_devices() {
        let mut table = DeviceTable::standard(|_| Some(3));
        for n in 0..VIRTIO_TRANSPORTS {
            let (window, intid) = virtio_transport(n).unwrap();
            table
                .insert_virtio("d", (window.base, window.size), intid, 4)
                .unwrap();
        }
        assert_eq!(table.len(), MAX_DEVICES);
    }

    #[test]
    fn the_standard_devices_fit_and_do_not_overlap() {
        assert!(STANDARD_DEVICES.len() <= MAX_DEVICES);
        let table = DeviceTable::standard(|_| Some(3));
        assert_eq!(
            table.len(),
            STANDARD_DEVICES.len(),
            "every standard device was accepted"
        );
    }
}
