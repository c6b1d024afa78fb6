#!/bin/sh
# The reset test of the Linux guest, run by /init when the kernel command line has
# `linux-init.test=reboot` (tests/manifests/linux-reboot.toml, QEMU test `linux-reboot`).
# Linux reboots once through PSCI SYSTEM_RESET (`reboot -f`), which rebuilds the VM from its
# image: RAM, the initramfs and this script are the same on both boots, so the only thing that
# can tell the second boot from the first is what the first left on a device the reset keeps.
# That is sector 0 of /dev/vda (virtio0, served by `vblk`, stored by the physical driver in
# QEMU's host file, which a VM reset does not touch): the first boot finds it zero, writes
# MARKER_1 there and reboots; the second finds MARKER_1, writes MARKER_2 (which the test's
# `disk_expect` finds in the host file) and lets init power off. Every line starts with
# "linux-reboot:"; a check that fails prints "linux-reboot: FAILED ...".

MARKER_1="linux-reboot: boot 1 was here"
MARKER_2="linux-reboot: boot 2 was here"

if [ ! -b /dev/vda ]; then
    echo "linux-reboot: FAILED: no /dev/vda"
    exit 1
fi

# Sector 0 up to its first NUL: the marker, or nothing on a fresh (zeroed) disk.
read_marker() {
    dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\000' | head -n 1
}

# One line into sector 0, padded with NULs to the sector (conv=sync), on the device before dd
# exits (conv=fsync).
write_marker() {
    echo "$1" | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null
}

# The virtio console answers on both boots: each boot says so through /dev/hvc0 (virtio1,
# printed by `vcon`), so a console device the reset left in its old state would show here.
say_on_hvc0() {
    if [ -c /dev/hvc0 ]; then
        echo "linux-reboot: $1 through virtio-console" > /dev/hvc0
    else
        echo "linux-reboot: FAILED: no /dev/hvc0"
    fi
}

marker=$(read_marker)
case "$marker" in
    "")
        say_on_hvc0 "boot 1"
        if write_marker "$MARKER_1" && [ "$(read_marker)" = "$MARKER_1" ]; then
            echo "linux-reboot: boot 1: no marker on /dev/vda; wrote one, rebooting"
        else
            echo "linux-reboot: FAILED: boot 1 could not write its marker"
            exit 1
        fi
        sync
        # -f: straight to the reboot system call (no init to ask), which Linux carries out
        # with PSCI SYSTEM_RESET. It does not return when the reset works.
        reboot -f
        echo "linux-reboot: FAILED: reboot -f returned"
        ;;
    "$MARKER_1")
        say_on_hvc0 "boot 2"
        echo "linux-reboot: boot 2: found the marker of boot 1 on /dev/vda"
        # Read from the device, not the page cache: a fresh kernel has none to offer anyway.
        if write_marker "$MARKER_2" && [ "$(read_marker)" = "$MARKER_2" ]; then
            echo "linux-reboot: boot 2: wrote its own marker; powering off"
        else
            echo "linux-reboot: FAILED: boot 2 could not write its marker"
        fi
        ;;
    *)
        # MARKER_2: a third boot, so the second one reset instead of powering off; anything
        # else: the disk was not fresh.
        echo "linux-reboot: FAILED: sector 0 of /dev/vda holds \"$marker\""
        ;;
esac
