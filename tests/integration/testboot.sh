#!/bin/bash
# Prepares what the QEMU end-to-end tests boot: the Debian kernel from the
# linux-image-amd64 package (downloaded and unpacked, never installed) and a
# tiny busybox initramfs whose /init prints a marker on the serial console and
# powers off. Output goes to $OUT (default build/testboot); reruns reuse it.
#   testboot.sh [OUT]  -> OUT/vmlinuz, OUT/test-initrd.img, OUT/modules/ (tree)
set -euo pipefail
OUT=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/testboot}
mkdir -p "$OUT"
cd "$OUT"

fetch_kernel() {
        [ -s vmlinuz ] && return 0
        local pkg deb
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
        if [ -z "$pkg" ]; then
                apt-get update -q >/dev/null
                pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
        fi
        [ -n "$pkg" ] || { echo "testboot: cannot resolve linux-image-amd64" >&2; exit 1; }
        rm -rf dl && mkdir dl
        (cd dl && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
        deb=$(ls dl/*.deb)
        rm -rf kernel-root && dpkg-deb -x "$deb" kernel-root
        cp kernel-root/boot/vmlinuz-* vmlinuz
        rm -rf modules && mv kernel-root/lib/modules modules
        rm -rf kernel-root dl
        echo "testboot: kernel from $pkg"
}

build_initrd() {
        [ -s test-initrd.img ] && [ test-initrd.img -nt "$0" ] && return 0
        local root
        root=$(mktemp -d)
        mkdir -p "$root"/{bin,dev,proc,sys}
        cp /bin/busybox "$root/bin/busybox"
        for app in sh echo cat mount poweroff sleep grep; do ln -s busybox "$root/bin/$app"; done
        cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "METALD-TESTBOOT-OK cmdline: $(cat /proc/cmdline)" > /dev/console
poweroff -f
INIT
        chmod 755 "$root/init"
        (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > test-initrd.img
        rm -rf "$root"
}

[ -x /bin/busybox ] || { echo "testboot: busybox-static is not installed" >&2; exit 1; }
fetch_kernel
build_initrd
