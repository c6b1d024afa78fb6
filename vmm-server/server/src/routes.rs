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
//!
//! Routes are page-granular: each covers its device's window rounded up to whole pages (a
//! virtio-mmio transport's 0x200 bytes take a page of their own, `layout::VIRTIO_MMIO`); an
//! access past the window but inside the page reaches the device server, which answers a bus
//! error, as the slow path's hole would. A virtio device whose doorbell notification the
//! manifest compiler made (`doorbell:<server>`) gets its QueueNotify as the route's doorbell:
//! the guest's kick signals the device server and the guest runs on (KVM's ioeventfd).

use abi::CPtr;
use userlib::{println, syscall};
use vmm_core::DeviceTable;
use vmm_core::layout::VIRTIO_QUEUE_NOTIFY;

/// The kernel's route granule.
const PAGE: u64 = 4096;

/// Sets route `index` of the VM to `device`'s window (whole pages) and endpoint, and its
/// doorbell when the device has one.
fn set(vcpu: CPtr, index: usize, device: &vmm_core::Device) {
    let (info, _) = syscall::invoke(
        vcpu,
        abi::InvocationLabel::VcpuSetMmioRoute,
        [
            index as u64,
            device.endpoint,
            device.window.base,
            device.window.size.next_multiple_of(PAGE),
        ],
    );
    if info.is_error() {
        println!(
            "vmm: no MMIO route for `{}` (kernel error {}): its accesses take the slow path",
            device.name,
            info.label()
        );
        return;
    }
    let Some(doorbell) = userlib::caps::try_cap_named("doorbell:", device.name) else {
        return;
    };
    let (info, _) = syscall::invoke(
        vcpu,
        abi::InvocationLabel::VcpuSetDoorbell,
        [index as u64, VIRTIO_QUEUE_NOTIFY, doorbell, 0],
    );
    if info.is_error() {
        println!(
            "vmm: no doorbell for `{}` (kernel error {}): its notifications take a round trip",
            device.name,
            info.label()
        );
    }
}

/// Whether `device` may have a route: it has no interrupt line, or its line changes reach us.
fn routable(device: &vmm_core::Device) -> bool {
    device.intid.is_none() || userlib::caps::try_cap("vmm-events").is_some()
}

/// Sets a route for every device (route index = position in the table).
pub fn install(vcpu: Option<CPtr>, devices: &DeviceTable) {
    let Some(vcpu) = vcpu else {
        return;
    };
    for (index, device) in devices.iter().enumerate() {
        if routable(device) {
            set(vcpu, index, device);
        }
    }
}

/// Sets the route of the device named `name` again (its server restarted).
pub fn refresh(vcpu: Option<CPtr>, devices: &DeviceTable, name: &str) {
    let Some(vcpu) = vcpu else {
        return;
    };
    if let Some((index, device)) = devices.iter().enumerate().find(|(_, d)| d.name == name)
        && routable(device)
    {
        set(vcpu, index, device);
    }
}
