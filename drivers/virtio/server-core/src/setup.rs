//! What a device server serves, from its boot info: the compiler lists the server's own device
//! (`bootdesc::bootinfo::DeviceInfo`) and the VM it belongs to (`VmInfo`: where its RAM is,
//! which the manifest maps into the server at VA = the RAM's guest-physical base).

use bootdesc::bootinfo::{self, DeviceInfo, DeviceKind};
use virtio_core::RamWindow;

/// The device and the RAM its driver's buffers must lie in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup<'a> {
    /// The device's entry.
    pub device: DeviceInfo<'a>,
    /// The VM's name.
    pub vm: &'a str,
    /// Guest RAM: every address the driver hands the device is checked against it.
    pub ram: RamWindow,
}

/// Why a server cannot serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The boot info does not decode.
    Malformed,
    /// It lists no device of the kind this server emulates.
    NoDevice,
    /// It lists more than one: a device server serves one transport.
    SeveralDevices,
    /// The device's VM is not in the boot info.
    NoVm,
    /// The VM's RAM window wraps the address space.
    BadRam,
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "the boot info does not decode",
            Self::NoDevice => "the boot info gives this server no device of its kind",
            Self::SeveralDevices => "the boot info gives this server more than one device",
            Self::NoVm => "the boot info does not give the device's VM",
            Self::BadRam => "the VM's RAM window wraps the address space",
        })
    }
}

/// The one device of `kind` in `blob`, with its VM's RAM window.
pub fn find(blob: &[u8], kind: DeviceKind) -> Result<Setup<'_>, SetupError> {
    let mut found = None;
    let mut several = false;
    bootinfo::for_each_device(blob, |device| {
        if device.kind == kind {
            several |= found.is_some();
            found = Some(device);
        }
        true
    })
    .ok_or(SetupError::Malformed)?;
    if several {
        return Err(SetupError::SeveralDevices);
    }
    let device = found.ok_or(SetupError::NoDevice)?;
    let mut vm = None;
    bootinfo::for_each_vm(blob, |info| {
        if info.index == device.vm {
            vm = Some(info);
        }
        vm.is_none()
    })
    .ok_or(SetupError::Malformed)?;
    let vm = vm.ok_or(SetupError::NoVm)?;
    let ram = RamWindow::new(vm.ram_base, vm.ram_size).ok_or(SetupError::BadRam)?;
    Ok(Setup {
        device,
        vm: vm.name,
        ram,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use bootinfo::{BootInfoHeader, VmInfo};
    use std::vec::Vec;

    const HEADER: BootInfoHeader<'static> = BootInfoHeader {
        server_id: 3,
        name: "vblk",
        caps: 0,
        heap_bytes: 0,
        supervised: 0,
        vms: 0,
        devices: 0,
    };

    fn vm(index: u16, ram_base: u64) -> VmInfo<'static> {
        VmInfo {
            name: "linux",
            index,
            ram_base,
            ram_size: 0x1000_0000,
            mmu_badge: None,
            resets: 0,
            dirty_log_windows: 4,
        }
    }

    fn device(kind: DeviceKind, vm: u16) -> DeviceInfo<'static> {
        DeviceInfo {
            vm,
            kind,
            base: 0x0A00_0000,
            size: 0x200,
            intid: 48,
            endpoint: "vblk",
        }
    }

    fn blob(vms: &[VmInfo<'_>], devices: &[DeviceInfo<'_>]) -> Vec<u8> {
        bootinfo::encode_with_devices(&HEADER, &[], &[], vms, devices).unwrap()
    }

    #[test]
    fn the_device_comes_with_its_vms_ram_window() {
        let blob = blob(
            &[vm(0, 0x8000_0000), vm(2, 0x4000_0000)],
            &[device(DeviceKind::VirtioBlk, 2)],
        );
        let setup = find(&blob, DeviceKind::VirtioBlk).unwrap();
        assert_eq!(setup.device, device(DeviceKind::VirtioBlk, 2));
        assert_eq!(setup.vm, "linux");
        assert_eq!(setup.ram, RamWindow::new(0x4000_0000, 0x1000_0000).unwrap());
    }

    #[test]
    fn a_missing_doubled_or_orphaned_device_is_refused() {
        let console_only = blob(
            &[vm(0, 0x4000_0000)],
            &[device(DeviceKind::VirtioConsole, 0)],
        );
        assert_eq!(
            find(&console_only, DeviceKind::VirtioBlk),
            Err(SetupError::NoDevice)
        );
        let two = blob(
            &[vm(0, 0x4000_0000)],
            &[
                device(DeviceKind::VirtioBlk, 0),
                device(DeviceKind::VirtioBlk, 0),
            ],
        );
        assert_eq!(
            find(&two, DeviceKind::VirtioBlk),
            Err(SetupError::SeveralDevices)
        );
        let orphan = blob(&[vm(0, 0x4000_0000)], &[device(DeviceKind::VirtioBlk, 1)]);
        assert_eq!(find(&orphan, DeviceKind::VirtioBlk), Err(SetupError::NoVm));
        let wrapping = blob(
            &[vm(0, u64::MAX - 0x1000)],
            &[device(DeviceKind::VirtioBlk, 0)],
        );
        assert_eq!(
            find(&wrapping, DeviceKind::VirtioBlk),
            Err(SetupError::BadRam)
        );
        let good = blob(&[vm(0, 0x4000_0000)], &[device(DeviceKind::VirtioBlk, 0)]);
        assert_eq!(
            find(&good[..good.len() - 2], DeviceKind::VirtioBlk),
            Err(SetupError::Malformed)
        );
        assert_eq!(find(&[], DeviceKind::VirtioBlk), Err(SetupError::Malformed));
    }
}
