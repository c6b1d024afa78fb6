//! The guest's device tree: a flattened device tree blob (DTB) describing a VM the way QEMU's
//! `-M virt,gic-version=3 -cpu cortex-a72` describes its board (QEMU's `hw/arm/virt.c`), so a
//! stock arm64 Linux boots on it. It is written on the host at compile time with `vm-fdt` and
//! loaded into guest RAM with the kernel (docs/LINUX.md, "Device tree").
//!
//! Every node follows its binding under Linux's Documentation/devicetree/bindings:
//! arm/cpus.yaml, arm/psci.yaml, interrupt-controller/arm,gic-v3.yaml, timer/arm,arch_timer.yaml,
//! serial/pl011.yaml, clock/fixed-clock.yaml and virtio/mmio.yaml.
//!
//! [`device_tree`] validates its input first (a manifest that builds never panics): every
//! refusal is a sentence saying what is wrong.

use std::collections::BTreeMap;
use vm_fdt::FdtWriter;

/// What the guest's device tree describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestTree<'a> {
    /// Guest-physical base of RAM.
    pub ram_base: u64,
    /// Bytes of RAM (non-zero).
    pub ram_size: u64,
    /// The kernel command line (`/chosen/bootargs`).
    pub cmdline: &'a str,
    /// Guest-physical [start, end) of the initrd, if any.
    pub initrd: Option<(u64, u64)>,
    /// Emulated devices to describe.
    pub devices: &'a [GuestDevice],
}

/// An emulated device the guest's tree describes, with the SPI it interrupts on (an SPI number:
/// GIC INTID `32 + spi`, the form of the `interrupts` cell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestDevice {
    /// An Arm PL011 UART, [`PL011_SIZE`] bytes of registers at `base`.
    Pl011 { base: u64, spi: u32 },
    /// A virtio-mmio transport, [`VIRTIO_MMIO_SIZE`] bytes of registers at `base`.
    VirtioMmio { base: u64, spi: u32 },
}

/// The guest's GICv3 distributor window `(base, size)`: QEMU virt's `VIRT_GIC_DIST`.
pub const GUEST_GIC_DISTRIBUTOR: (u64, u64) = (0x0800_0000, 0x1_0000);
/// The guest's GICv3 redistributor window `(base, size)`: one CPU's RD_base and SGI_base 64 KiB
/// frames (GICv3 architecture specification, IHI 0069, section 12.10), at QEMU virt's
/// `VIRT_GIC_REDIST`.
pub const GUEST_GIC_REDISTRIBUTOR: (u64, u64) = (0x080A_0000, 0x2_0000);
/// Bytes of a PL011's register window (PL011 TRM, DDI 0183: 4 KiB).
pub const PL011_SIZE: u64 = 0x1000;
/// Bytes of a virtio-mmio transport's register window (QEMU virt's `VIRT_MMIO` stride).
pub const VIRTIO_MMIO_SIZE: u64 = 0x200;
/// Linux's `COMMAND_LINE_SIZE` on arm64 (arch/arm64/include/uapi/asm/setup.h), terminating NUL
/// included: the longest command line is one byte shorter.
pub const COMMAND_LINE_SIZE: usize = 2048;
/// The largest SPI number: SPIs are INTIDs 32..=1019 (GICv3 specification, section 2.2.1).
pub const MAX_SPI: u32 = 1019 - 32;
/// The largest DTB Linux accepts (Documentation/arch/arm64/booting.rst: "must not exceed 2
/// megabytes in size").
pub const MAX_DEVICE_TREE_SIZE: usize = 2 << 20;

/// The PL011's clock (QEMU virt's `apb-pclk`): a fixed 24 MHz clock.
const APB_PCLK_HZ: u32 = 24_000_000;

const GIC_PHANDLE: u32 = 1;
const APB_PCLK_PHANDLE: u32 = 2;

/// The first cell of a GIC interrupt specifier (interrupt-controller/arm,gic-v3.yaml).
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// The third cell's trigger type (include/dt-bindings/interrupt-controller/irq.h).
const IRQ_TYPE_EDGE_RISING: u32 = 1;
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;

/// The architected timer's PPIs, in the order timer/arm,arch_timer.yaml lists them: secure
/// physical, non-secure physical, virtual, hypervisor physical (QEMU virt's
/// `ARCH_TIMER_*_IRQ`; INTIDs 29, 30, 27, 26).
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];

impl GuestDevice {
    /// Guest-physical base of the register window.
    pub fn base(&self) -> u64 {
        match *self {
            GuestDevice::Pl011 { base, .. } | GuestDevice::VirtioMmio { base, .. } => base,
        }
    }

    /// Bytes of the register window.
    pub fn size(&self) -> u64 {
        match self {
            GuestDevice::Pl011 { .. } => PL011_SIZE,
            GuestDevice::VirtioMmio { .. } => VIRTIO_MMIO_SIZE,
        }
    }

    /// The SPI number it interrupts on.
    pub fn spi(&self) -> u32 {
        match *self {
            GuestDevice::Pl011 { spi, .. } | GuestDevice::VirtioMmio { spi, .. } => spi,
        }
    }

    /// The node's name, QEMU's (`pl011@9000000`, `virtio_mmio@a000000`).
    fn node_name(&self) -> String {
        let kind = match self {
            GuestDevice::Pl011 { .. } => "pl011",
            GuestDevice::VirtioMmio { .. } => "virtio_mmio",
        };
        format!("{kind}@{:x}", self.base())
    }

    /// How errors name it.
    fn describe(&self) -> String {
        let kind = match self {
            GuestDevice::Pl011 { .. } => "the PL011",
            GuestDevice::VirtioMmio { .. } => "the virtio-mmio transport",
        };
        format!("{kind} at {:#x}", self.base())
    }
}

/// A half-open guest-physical range, for the overlap checks.
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
}

impl Span {
    fn overlaps(self, other: Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

/// `base + size` as a span, or `None` when it passes the end of the 64-bit address space.
fn span(base: u64, size: u64) -> Option<Span> {
    Some(Span {
        start: base,
        end: base.checked_add(size)?,
    })
}

const GIC_WINDOWS: [(&str, Span); 2] = [
    (
        "the GIC distributor",
        Span {
            start: GUEST_GIC_DISTRIBUTOR.0,
            end: GUEST_GIC_DISTRIBUTOR.0 + GUEST_GIC_DISTRIBUTOR.1,
        },
    ),
    (
        "the GIC redistributor",
        Span {
            start: GUEST_GIC_REDISTRIBUTOR.0,
            end: GUEST_GIC_REDISTRIBUTOR.0 + GUEST_GIC_REDISTRIBUTOR.1,
        },
    ),
];

/// Builds the guest's device tree blob, or says what in `tree` is wrong.
pub fn device_tree(tree: &GuestTree<'_>) -> Result<Vec<u8>, String> {
    validate(tree)?;
    let blob = write(tree).map_err(|error| format!("cannot write the device tree: {error}"))?;
    if blob.len() > MAX_DEVICE_TREE_SIZE {
        return Err(format!(
            "the device tree is {} bytes; Linux accepts at most {MAX_DEVICE_TREE_SIZE}",
            blob.len()
        ));
    }
    Ok(blob)
}

fn validate(tree: &GuestTree<'_>) -> Result<(), String> {
    if tree.ram_size == 0 {
        return Err("the guest's RAM is empty (ram_size 0)".into());
    }
    let ram = span(tree.ram_base, tree.ram_size).ok_or_else(|| {
        format!(
            "the guest's RAM ({:#x} + {:#x}) runs past the end of the address space",
            tree.ram_base, tree.ram_size
        )
    })?;
    for (name, window) in GIC_WINDOWS {
        if ram.overlaps(window) {
            return Err(format!(
                "the guest's RAM ({ram}) overlaps {name} ({window})"
            ));
        }
    }

    if let Some((start, end)) = tree.initrd {
        let initrd = Span { start, end };
        if start >= end {
            return Err(format!(
                "the initrd ({initrd}) is empty or ends before it starts"
            ));
        }
        if start < ram.start || end > ram.end {
            return Err(format!("the initrd ({initrd}) is not inside RAM ({ram})"));
        }
    }

    if tree.cmdline.contains('\0') {
        return Err("the kernel command line contains a NUL byte".into());
    }
    if tree.cmdline.len() >= COMMAND_LINE_SIZE {
        return Err(format!(
            "the kernel command line is {} bytes; Linux keeps at most {} (COMMAND_LINE_SIZE {COMMAND_LINE_SIZE} with its NUL)",
            tree.cmdline.len(),
            COMMAND_LINE_SIZE - 1
        ));
    }

    let mut windows = Vec::with_capacity(tree.devices.len());
    let mut spis = BTreeMap::new();
    for device in tree.devices {
        let window = span(device.base(), device.size()).ok_or_else(|| {
            format!(
                "{}'s registers run past the end of the address space",
                device.describe()
            )
        })?;
        if window.overlaps(ram) {
            return Err(format!(
                "{} ({window}) overlaps the guest's RAM ({ram})",
                device.describe()
            ));
        }
        for (name, gic) in GIC_WINDOWS {
            if window.overlaps(gic) {
                return Err(format!(
                    "{} ({window}) overlaps {name} ({gic})",
                    device.describe()
                ));
            }
        }
        if device.spi() > MAX_SPI {
            return Err(format!(
                "{} interrupts on SPI {}; SPIs are 0..={MAX_SPI} (INTIDs 32..=1019)",
                device.describe(),
                device.spi()
            ));
        }
        if let Some(other) = spis.insert(device.spi(), device) {
            return Err(format!(
                "{} and {} both interrupt on SPI {}",
                other.describe(),
                device.describe(),
                device.spi()
            ));
        }
        windows.push((window, device));
    }
    // Sorted by base, any overlap shows between neighbours.
    windows.sort_by_key(|(window, _)| (window.start, window.end));
    for pair in windows.windows(2) {
        let [(first, first_device), (second, second_device)] = pair else {
            continue;
        };
        if first.overlaps(*second) {
            return Err(format!(
                "{} ({first}) overlaps {} ({second})",
                first_device.describe(),
                second_device.describe()
            ));
        }
    }
    Ok(())
}

/// Two cells each (the root's `#address-cells` and `#size-cells`).
fn reg(base: u64, size: u64) -> [u64; 2] {
    [base, size]
}

fn write(tree: &GuestTree<'_>) -> Result<Vec<u8>, vm_fdt::Error> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_string("model", "linux,dummy-virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    // Every device's interrupts go to the GIC unless a node says otherwise (QEMU sets it here).
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", tree.cmdline)?;
    if let Some(uart) = tree
        .devices
        .iter()
        .find(|device| matches!(device, GuestDevice::Pl011 { .. }))
    {
        // What Linux takes as its console without `console=`, and its `earlycon` without
        // arguments (Documentation/admin-guide/kernel-parameters.txt, "earlycon").
        fdt.property_string("stdout-path", &format!("/{}", uart.node_name()))?;
    }
    if let Some((start, end)) = tree.initrd {
        // drivers/of/fdt.c early_init_dt_check_for_initrd: end is exclusive; cells of either
        // width are read, 64-bit ones reach all of the address space.
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(chosen)?;

    let memory = fdt.begin_node(&format!("memory@{:x}", tree.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &reg(tree.ram_base, tree.ram_size))?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    let cpu = fdt.begin_node("cpu@0")?;
    fdt.property_string("device_type", "cpu")?;
    fdt.property_string("compatible", "arm,cortex-a72")?;
    // MPIDR_EL1's affinity fields (arm/cpus.yaml); the VCPU reads the boot CPU's, 0 on QEMU virt.
    fdt.property_u32("reg", 0)?;
    fdt.property_string("enable-method", "psci")?;
    fdt.end_node(cpu)?;
    fdt.end_node(cpus)?;

    // PSCI 0.2 and later have standard function ids, so none are listed (arm/psci.yaml); the vmm
    // answers PSCI 1.1 on `hvc` (docs/GUEST-ABI.md, "Hypercalls").
    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    let (dist_base, dist_size) = GUEST_GIC_DISTRIBUTOR;
    let (redist_base, redist_size) = GUEST_GIC_REDISTRIBUTOR;
    let gic = fdt.begin_node(&format!("intc@{dist_base:x}"))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#redistributor-regions", 1)?;
    fdt.property_array_u64("reg", &[dist_base, dist_size, redist_base, redist_size])?;
    // As QEMU: the cells an ITS child would use (none here), and dtc's interrupt_provider check
    // wants `#address-cells` in every interrupt controller.
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_null("ranges")?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;

    // Level-high with no CPU mask: the mask in bits 15:8 is GICv2's (arm,gic.yaml); GICv3's
    // third cell has only the trigger type, so QEMU's 0x104 for one CPU under GICv2 is plain 4
    // under GICv3 (hw/arm/virt.c fdt_add_timer_nodes).
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let timer_interrupts: Vec<u32> = TIMER_PPIS
        .iter()
        .flat_map(|&ppi| [GIC_PPI, ppi, IRQ_TYPE_LEVEL_HIGH])
        .collect();
    fdt.property_array_u32("interrupts", &timer_interrupts)?;
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;

    // The PL011 binding lists clocks as optional, but Linux's amba bus will not probe a
    // primecell without `apb_pclk` (QEMU virt's create_fdt says the same).
    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", APB_PCLK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(APB_PCLK_PHANDLE)?;
    fdt.end_node(clock)?;

    for device in tree.devices {
        let node = fdt.begin_node(&device.node_name())?;
        match *device {
            GuestDevice::Pl011 { base, spi } => {
                fdt.property_string_list(
                    "compatible",
                    vec!["arm,pl011".into(), "arm,primecell".into()],
                )?;
                fdt.property_array_u64("reg", &reg(base, PL011_SIZE))?;
                fdt.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_TYPE_LEVEL_HIGH])?;
                fdt.property_array_u32("clocks", &[APB_PCLK_PHANDLE, APB_PCLK_PHANDLE])?;
                fdt.property_string_list("clock-names", vec!["uartclk".into(), "apb_pclk".into()])?;
            }
            GuestDevice::VirtioMmio { base, spi } => {
                fdt.property_string("compatible", "virtio,mmio")?;
                fdt.property_array_u64("reg", &reg(base, VIRTIO_MMIO_SIZE))?;
                // Edge-rising, as QEMU describes its transports.
                fdt.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_TYPE_EDGE_RISING])?;
                // The device side reads guest RAM coherently with the guest's caches, so Linux
                // does no cache maintenance around its rings (virtio/mmio.yaml).
                fdt.property_null("dma-coherent")?;
            }
        }
        fdt.end_node(node)?;
    }

    fdt.end_node(root)?;
    fdt.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::fdt::Fdt;
    use ::fdt::node::FdtNode;
    use proptest::prelude::*;

    const RAM_BASE: u64 = 0x4000_0000;
    const RAM_SIZE: u64 = 0x1000_0000;
    const CMDLINE: &str = "console=ttyAMA0 earlycon root=/dev/vda rw";
    const INITRD: (u64, u64) = (0x4800_0000, 0x4880_1234);
    const UART: GuestDevice = GuestDevice::Pl011 {
        base: 0x0900_0000,
        spi: 1,
    };
    const VIRTIO: GuestDevice = GuestDevice::VirtioMmio {
        base: 0x0a00_0000,
        spi: 16,
    };

    fn tree(devices: &[GuestDevice]) -> GuestTree<'_> {
        GuestTree {
            ram_base: RAM_BASE,
            ram_size: RAM_SIZE,
            cmdline: CMDLINE,
            initrd: Some(INITRD),
            devices,
        }
    }

    fn node<'b, 'a>(fdt: &'b Fdt<'a>, path: &str) -> FdtNode<'b, 'a> {
        fdt.find_node(path)
            .unwrap_or_else(|| panic!("no node {path}"))
    }

    fn bytes<'a>(node: FdtNode<'_, 'a>, name: &str) -> &'a [u8] {
        node.property(name)
            .unwrap_or_else(|| panic!("{} has no {name}", node.name))
            .value
    }

    fn u32s(node: FdtNode<'_, '_>, name: &str) -> Vec<u32> {
        let value = bytes(node, name);
        assert_eq!(value.len() % 4, 0, "{name} is not whole cells");
        value
            .chunks_exact(4)
            .map(|cell| u32::from_be_bytes(cell.try_into().unwrap()))
            .collect()
    }

    fn u64s(node: FdtNode<'_, '_>, name: &str) -> Vec<u64> {
        let value = bytes(node, name);
        assert_eq!(
            value.len() % 8,
            0,
            "{name} is not whole 64-bit pairs of cells"
        );
        value
            .chunks_exact(8)
            .map(|pair| u64::from_be_bytes(pair.try_into().unwrap()))
            .collect()
    }

    /// A string or string list, each string NUL-terminated as the spec requires.
    fn strings<'a>(node: FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
        let value = bytes(node, name);
        let body = value
            .strip_suffix(&[0])
            .unwrap_or_else(|| panic!("{name} is not NUL-terminated"));
        body.split(|&byte| byte == 0)
            .map(|s| std::str::from_utf8(s).unwrap())
            .collect()
    }

    fn refusal(tree: &GuestTree<'_>) -> String {
        device_tree(tree).expect_err("the tree should be refused")
    }

    #[test]
    fn the_tree_reads_back_with_what_linux_needs() {
        let blob = device_tree(&tree(&[UART, VIRTIO])).unwrap();
        let fdt = Fdt::new(&blob).unwrap();

        let root = node(&fdt, "/");
        assert_eq!(strings(root, "compatible"), ["linux,dummy-virt"]);
        assert_eq!(u32s(root, "#address-cells"), [2]);
        assert_eq!(u32s(root, "#size-cells"), [2]);
        assert!(root.property("model").is_some());

        let memory = node(&fdt, "/memory@40000000");
        assert_eq!(strings(memory, "device_type"), ["memory"]);
        assert_eq!(u64s(memory, "reg"), [RAM_BASE, RAM_SIZE]);

        let chosen = node(&fdt, "/chosen");
        assert_eq!(fdt.chosen().bootargs(), Some(CMDLINE));
        assert_eq!(u64s(chosen, "linux,initrd-start"), [INITRD.0]);
        assert_eq!(u64s(chosen, "linux,initrd-end"), [INITRD.1]);
        assert_eq!(strings(chosen, "stdout-path"), ["/pl011@9000000"]);
        assert_eq!(fdt.chosen().stdout().map(|n| n.name), Some("pl011@9000000"));

        assert_eq!(u32s(node(&fdt, "/cpus"), "#address-cells"), [1]);
        assert_eq!(u32s(node(&fdt, "/cpus"), "#size-cells"), [0]);
        let cpu = node(&fdt, "/cpus/cpu@0");
        assert_eq!(strings(cpu, "device_type"), ["cpu"]);
        assert_eq!(strings(cpu, "compatible"), ["arm,cortex-a72"]);
        assert_eq!(u32s(cpu, "reg"), [0]);
        assert_eq!(strings(cpu, "enable-method"), ["psci"]);

        let psci = node(&fdt, "/psci");
        assert_eq!(
            strings(psci, "compatible"),
            ["arm,psci-1.0", "arm,psci-0.2"]
        );
        assert_eq!(strings(psci, "method"), ["hvc"]);

        let gic = node(&fdt, "/intc@8000000");
        assert_eq!(strings(gic, "compatible"), ["arm,gic-v3"]);
        assert_eq!(
            u64s(gic, "reg"),
            [0x0800_0000, 0x1_0000, 0x080A_0000, 0x2_0000]
        );
        assert_eq!(u32s(gic, "#interrupt-cells"), [3]);
        assert_eq!(u32s(gic, "#redistributor-regions"), [1]);
        assert_eq!(bytes(gic, "interrupt-controller"), []);
        let gic_phandle = u32s(gic, "phandle");
        assert_eq!(u32s(root, "interrupt-parent"), gic_phandle);
        assert_eq!(
            root.interrupt_parent().map(|n| n.name),
            Some("intc@8000000")
        );
        assert!(fdt.find_compatible(&["arm,gic-v3-its"]).is_none());

        let timer = node(&fdt, "/timer");
        assert_eq!(strings(timer, "compatible"), ["arm,armv8-timer"]);
        #[rustfmt::skip]
        assert_eq!(u32s(timer, "interrupts"), [
            1, 13, 4, // secure physical
            1, 14, 4, // non-secure physical
            1, 11, 4, // virtual
            1, 10, 4, // hypervisor physical
        ]);
        assert_eq!(bytes(timer, "always-on"), []);

        let clock = node(&fdt, "/apb-pclk");
        assert_eq!(strings(clock, "compatible"), ["fixed-clock"]);
        assert_eq!(u32s(clock, "#clock-cells"), [0]);
        assert_eq!(u32s(clock, "clock-frequency"), [24_000_000]);
        assert_eq!(strings(clock, "clock-output-names"), ["clk24mhz"]);
        let clock_phandle = u32s(clock, "phandle")[0];
        assert_ne!([clock_phandle], gic_phandle[..]);

        let uart = node(&fdt, "/pl011@9000000");
        assert_eq!(strings(uart, "compatible"), ["arm,pl011", "arm,primecell"]);
        assert_eq!(u64s(uart, "reg"), [0x0900_0000, 0x1000]);
        assert_eq!(u32s(uart, "interrupts"), [0, 1, 4]);
        assert_eq!(u32s(uart, "clocks"), [clock_phandle, clock_phandle]);
        assert_eq!(strings(uart, "clock-names"), ["uartclk", "apb_pclk"]);
        // Inherited from the root: the PL011's interrupt goes to the GIC.
        assert!(uart.property("interrupt-parent").is_none());

        let virtio = node(&fdt, "/virtio_mmio@a000000");
        assert_eq!(strings(virtio, "compatible"), ["virtio,mmio"]);
        assert_eq!(u64s(virtio, "reg"), [0x0a00_0000, 0x200]);
        assert_eq!(u32s(virtio, "interrupts"), [0, 16, 1]);
        assert_eq!(bytes(virtio, "dma-coherent"), []);
    }

    #[test]
    fn a_bare_tree_has_no_initrd_console_or_devices() {
        let bare = GuestTree {
            initrd: None,
            cmdline: "",
            ..tree(&[])
        };
        let blob = device_tree(&bare).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let chosen = node(&fdt, "/chosen");
        assert_eq!(strings(chosen, "bootargs"), [""]);
        for absent in ["linux,initrd-start", "linux,initrd-end", "stdout-path"] {
            assert!(chosen.property(absent).is_none(), "{absent}");
        }
        assert!(fdt.find_compatible(&["arm,pl011", "virtio,mmio"]).is_none());
        // The GIC, timer and clock are there regardless.
        assert!(fdt.find_compatible(&["arm,gic-v3"]).is_some());
        assert!(fdt.find_compatible(&["arm,armv8-timer"]).is_some());
    }

    #[test]
    fn the_console_is_the_first_pl011() {
        let second = GuestDevice::Pl011 {
            base: 0x0904_0000,
            spi: 8,
        };
        let blob = device_tree(&tree(&[VIRTIO, second, UART])).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(
            strings(node(&fdt, "/chosen"), "stdout-path"),
            ["/pl011@9040000"]
        );
        assert_eq!(u32s(node(&fdt, "/pl011@9000000"), "interrupts"), [0, 1, 4]);
        assert_eq!(u32s(node(&fdt, "/pl011@9040000"), "interrupts"), [0, 8, 4]);
    }

    #[test]
    fn ram_must_be_non_empty_addressable_and_off_the_gic() {
        let empty = GuestTree {
            ram_size: 0,
            initrd: None,
            ..tree(&[])
        };
        assert!(refusal(&empty).contains("ram_size 0"));

        let wrapping = GuestTree {
            ram_base: u64::MAX - 0xFFF,
            ram_size: 0x2000,
            initrd: None,
            ..tree(&[])
        };
        assert!(refusal(&wrapping).contains("past the end of the address space"));

        // RAM ending just past the distributor's first byte, and RAM over the redistributor.
        for (ram_base, ram_size, owner) in [
            (0x0700_0000, 0x0100_0001, "the GIC distributor"),
            (0x080B_0000, 0x1000, "the GIC redistributor"),
        ] {
            let over_gic = GuestTree {
                ram_base,
                ram_size,
                initrd: None,
                ..tree(&[])
            };
            let error = refusal(&over_gic);
            assert!(error.contains(owner), "{error}");
        }
        // Ending exactly where the distributor starts is fine.
        let below_gic = GuestTree {
            ram_base: 0x0700_0000,
            ram_size: 0x0100_0000,
            initrd: None,
            ..tree(&[])
        };
        assert!(device_tree(&below_gic).is_ok());
    }

    #[test]
    fn the_initrd_must_be_a_non_empty_range_inside_ram() {
        let ram_end = RAM_BASE + RAM_SIZE;
        for (start, end, why) in [
            (0x4800_0000, 0x4800_0000, "empty"),
            (0x4800_1000, 0x4800_0000, "empty"),
            (RAM_BASE - 0x1000, RAM_BASE + 0x1000, "not inside RAM"),
            (ram_end - 0x1000, ram_end + 1, "not inside RAM"),
            (ram_end, ram_end + 0x1000, "not inside RAM"),
            (0x1000, 0x2000, "not inside RAM"),
        ] {
            let bad = GuestTree {
                initrd: Some((start, end)),
                ..tree(&[])
            };
            let error = refusal(&bad);
            assert!(error.contains(why), "{start:#x}..{end:#x}: {error}");
        }
        // All of RAM is allowed.
        let whole = GuestTree {
            initrd: Some((RAM_BASE, ram_end)),
            ..tree(&[])
        };
        assert!(device_tree(&whole).is_ok());
    }

    #[test]
    fn the_command_line_has_no_nul_and_fits_linux() {
        let with_nul = GuestTree {
            cmdline: "console=ttyAMA0\0init=/bin/sh",
            ..tree(&[])
        };
        assert!(refusal(&with_nul).contains("NUL"));

        let longest = "x".repeat(COMMAND_LINE_SIZE - 1);
        let blob = device_tree(&GuestTree {
            cmdline: &longest,
            ..tree(&[])
        })
        .unwrap();
        assert_eq!(
            Fdt::new(&blob).unwrap().chosen().bootargs(),
            Some(&*longest)
        );

        let too_long = "x".repeat(COMMAND_LINE_SIZE);
        let error = refusal(&GuestTree {
            cmdline: &too_long,
            ..tree(&[])
        });
        assert!(error.contains("2048 bytes"), "{error}");
    }

    #[test]
    fn devices_must_not_overlap_ram_the_gic_or_each_other() {
        let cases: [(&[GuestDevice], &str); 7] = [
            (
                &[GuestDevice::Pl011 {
                    base: RAM_BASE + RAM_SIZE - 0x800,
                    spi: 1,
                }],
                "overlaps the guest's RAM",
            ),
            (
                &[GuestDevice::VirtioMmio {
                    base: RAM_BASE - 0x100,
                    spi: 1,
                }],
                "overlaps the guest's RAM",
            ),
            (
                &[GuestDevice::Pl011 {
                    base: 0x0800_F000,
                    spi: 1,
                }],
                "overlaps the GIC distributor",
            ),
            (
                &[GuestDevice::VirtioMmio {
                    base: 0x080B_FE00,
                    spi: 1,
                }],
                "overlaps the GIC redistributor",
            ),
            (
                &[
                    UART,
                    GuestDevice::VirtioMmio {
                        base: 0x0900_0E00,
                        spi: 2,
                    },
                ],
                "overlaps the virtio-mmio transport at 0x9000e00",
            ),
            // The overlap is found whatever the order the devices come in.
            (
                &[
                    GuestDevice::VirtioMmio {
                        base: 0x0a00_0100,
                        spi: 17,
                    },
                    VIRTIO,
                    UART,
                ],
                "the virtio-mmio transport at 0xa000000 (0xa000000..0xa000200) overlaps \
                 the virtio-mmio transport at 0xa000100",
            ),
            (
                &[GuestDevice::Pl011 {
                    base: u64::MAX - 0xFFE,
                    spi: 1,
                }],
                "past the end of the address space",
            ),
        ];
        for (devices, why) in cases {
            let error = refusal(&tree(devices));
            assert!(error.contains(why), "{devices:?}: {error}");
        }

        // Neighbours that touch are fine, as are windows next to the GIC's.
        let adjacent = [
            VIRTIO,
            GuestDevice::VirtioMmio {
                base: 0x0a00_0200,
                spi: 17,
            },
            GuestDevice::Pl011 {
                base: 0x0801_0000,
                spi: 2,
            },
            GuestDevice::Pl011 {
                base: 0x080C_0000,
                spi: 3,
            },
        ];
        assert!(device_tree(&tree(&adjacent)).is_ok());
    }

    #[test]
    fn each_device_has_its_own_valid_spi() {
        let shared = [
            UART,
            GuestDevice::VirtioMmio {
                base: 0x0a00_0000,
                spi: 1,
            },
        ];
        let error = refusal(&tree(&shared));
        assert!(
            error.contains("the PL011 at 0x9000000 and the virtio-mmio transport at 0xa000000 both interrupt on SPI 1"),
            "{error}"
        );

        let last = GuestDevice::VirtioMmio {
            base: 0x0a00_0000,
            spi: MAX_SPI,
        };
        let blob = device_tree(&tree(&[last])).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(
            u32s(node(&fdt, "/virtio_mmio@a000000"), "interrupts"),
            [0, 987, 1]
        );

        let past = GuestDevice::VirtioMmio {
            base: 0x0a00_0000,
            spi: MAX_SPI + 1,
        };
        let error = refusal(&tree(&[past]));
        assert!(error.contains("SPI 988"), "{error}");
    }

    fn any_device() -> impl Strategy<Value = GuestDevice> {
        // Bases near the interesting places: the GIC, the UART, RAM and the top of the space.
        let base = prop_oneof![
            0x0700_0000u64..0x0A10_0000,
            0x3FFF_0000u64..0x4001_0000,
            u64::MAX - 0x2000..=u64::MAX,
            any::<u64>(),
        ];
        (base, 0u32..1100, any::<bool>()).prop_map(|(base, spi, uart)| {
            if uart {
                GuestDevice::Pl011 { base, spi }
            } else {
                GuestDevice::VirtioMmio { base, spi }
            }
        })
    }

    proptest! {
        /// Whatever a manifest says, the generator answers a blob or a refusal, never a panic;
        /// and every blob it answers parses back to the RAM and devices it was asked for.
        #[test]
        fn any_input_is_a_tree_or_a_refusal(
            ram_base in prop_oneof![Just(RAM_BASE), any::<u64>()],
            ram_size in prop_oneof![Just(RAM_SIZE), 0u64..0x1_0000_0000, any::<u64>()],
            initrd in proptest::option::of((any::<u64>(), any::<u64>())),
            cmdline in "[ -~]{0,40}",
            devices in proptest::collection::vec(any_device(), 0..6),
        ) {
            let tree = GuestTree { ram_base, ram_size, cmdline: &cmdline, initrd, devices: &devices };
            if let Ok(blob) = device_tree(&tree) {
                let fdt = Fdt::new(&blob).unwrap();
                let memory = node(&fdt, &format!("/memory@{ram_base:x}"));
                prop_assert_eq!(u64s(memory, "reg"), [ram_base, ram_size]);
                prop_assert_eq!(fdt.chosen().bootargs(), Some(&*cmdline));
                for device in &devices {
                    let found = node(&fdt, &format!("/{}", device.node_name()));
                    prop_assert_eq!(u64s(found, "reg"), [device.base(), device.size()]);
                    prop_assert_eq!(u32s(found, "interrupts")[1], device.spi());
                }
            }
        }
    }
}
