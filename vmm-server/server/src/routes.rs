//! The VM's MMIO route table in the kernel (docs/MMIO.md): one route per device window, naming
//! the endpoint of the device's server, so that an access the mmu-server cached as an MMIO
//! marker goes from the guest straight to that server without passing through here.
//!
//! Routes are set once at start, and again for a device whose server restarted (the kernel's
//! fast path stops matching a route to a restarted server, so until then its accesses come
//! here, the slow path). A device with an interrupt line gets a route only when this vmm has
//! its bound notification `vmm-events`: on the fast path the vmm no longer sees the device's
//! answers, so the device signals it when its line changes, and without that channel the vGIC
//! would miss the change.

use abi::CPtr;
use userlib::{println, syscall};
use vmm_core::DeviceTable;

/// Sets route `index` of the VM to `device`'s window and endpoint.
fn set(vcpu: CPtr, index: usize, device: &vmm_core::Device) {
    let (info, _) = syscall::invoke(
        vcpu,
        abi::InvocationLabel::VcpuSetMmioRoute,
        [
            index as u64,
            device.endpoint,
            device.window.base,
            device.window.size,
        ],
    );
    if info.is_error() {
        println!(
            "vmm: no MMIO route for `{}` (kernel error {}): its accesses take the slow path",
            device.name,
            info.label()
        );
    }
}

/// Sets a route for every device (route index = position in the table).
pub fn install(vcpu: Option<CPtr>, devices: &DeviceTable) {
    let Some(vcpu) = vcpu else {
        return;
    };
    let line_changes_reach_us = userlib::caps::try_cap("vmm-events").is_some();
    for (index, device) in devices.iter().enumerate() {
        if device.intid.is_none() || line_changes_reach_us {
            set(vcpu, index, device);
        }
    }
}

/// Sets the route of the device named `name` again (its server restarted).
pub fn refresh(vcpu: Option<CPtr>, devices: &DeviceTable, name: &str) {
    let Some(vcpu) = vcpu else {
        return;
    };
    let line_changes_reach_us = userlib::caps::try_cap("vmm-events").is_some();
    if let Some((index, device)) = devices.iter().enumerate().find(|(_, d)| d.name == name)
        && (device.intid.is_none() || line_changes_reach_us)
    {
        set(vcpu, index, device);
    }
}
