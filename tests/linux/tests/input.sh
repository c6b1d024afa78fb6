#!/bin/sh
# The console-input test of the Linux guest, run by /init when the kernel command line has
# `linux-init.test=input` (tests/manifests/linux-virtio-input.toml, QEMU test
# `linux-virtio-input`). The virtio console `vcon` holds the system's console input there
# (`debug = ["input"]`, the PL011 server without it): what is typed on QEMU's serial port goes
# kernel -> vcon -> a receive buffer of /dev/hvc0. The test's `input` key types a line once
# the prompt below appears; the script reads it from hvc0 and says what it got. Every line
# starts with "linux-input:"; a failure prints "linux-input: FAILED ...".

if [ ! -c /dev/hvc0 ]; then
    echo "linux-input: FAILED: no /dev/hvc0"
    exit 1
fi
# Raw enough for a test: no echo (the typed line would come back through vcon's output too).
stty -F /dev/hvc0 -echo 2>/dev/null
echo "linux-input: type a line on hvc0"
if read -r line < /dev/hvc0; then
    echo "linux-input: hvc0 read \"$line\""
else
    echo "linux-input: FAILED: nothing read from hvc0"
fi
