#!/bin/sh
# The virtio test of the Linux guest, run by /init when the kernel command line has
# `linux-init.test=disk` (tests/manifests/linux-virtio.toml, QEMU test `linux-virtio-blk`):
# virtio0 is a block device served by the `vblk` device server, whose sectors the physical
# driver stores in QEMU's host file; virtio1 is a console served by `vcon`. Every line starts
# with "linux-disk:"; a check that fails prints "linux-disk: FAILED ...".

# The console: one line through /dev/hvc0, which `vcon` prints on the system console.
if [ -c /dev/hvc0 ]; then
    echo "linux-disk: hello through virtio-console" > /dev/hvc0
else
    echo "linux-disk: FAILED: no /dev/hvc0"
fi

if [ ! -b /dev/vda ]; then
    echo "linux-disk: FAILED: no /dev/vda"
    exit 1
fi
echo "linux-disk: /dev/vda has $(cat /sys/block/vda/size) sectors"

# 1 MiB of 16-byte records "000000000000000\n", "000000000000001\n", ...: the `counter-lines`
# pattern the test's `disk_expect` looks for in the host file.
pattern() {
    awk 'BEGIN { for (i = 0; i < 65536; i++) printf "%015d\n", i }'
}
if pattern | dd of=/dev/vda bs=4096 conv=fsync 2>/dev/null; then
    echo "linux-disk: wrote 1 MiB to /dev/vda"
else
    echo "linux-disk: FAILED: writing /dev/vda"
fi
sync

# Read it back from the device, not from the page cache.
echo 3 > /proc/sys/vm/drop_caches
expected=$(pattern | md5sum)
actual=$(dd if=/dev/vda bs=4096 count=256 2>/dev/null | md5sum)
if [ "$actual" = "$expected" ]; then
    echo "linux-disk: read 1 MiB back, md5 ${actual%% *} as written"
else
    echo "linux-disk: FAILED: read back md5 ${actual%% *}, wrote ${expected%% *}"
fi

# Both devices interrupted: their lines of /proc/interrupts.
while read -r line; do
    case "$line" in
        *virtio*) echo "linux-disk: irq $line" ;;
    esac
done < /proc/interrupts
echo "linux-disk: done"
