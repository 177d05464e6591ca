#!/bin/sh
# The init of metald's test images (busybox only). It reads the machine's
# METALD-CFG record (docs/IMAGES.md), prints one marker line on the console
#   METALD-IMAGE name=NAME version=V hostname=HOST     (HOST "(none)" without a valid record)
# and powers off. /etc/metald-test-image sets NAME, VERSION and ROLE:
#   disk      the /init of an installed image's initramfs
#   diskless  the /init of a diskless image's initramfs: mounts the squashfs
#             root it finds on a block device and hands over to its /sbin/init
#   rootfs    that /sbin/init
PATH=/bin
export PATH
. /etc/metald-test-image

CFG_MAGIC=4d4554414c442d4346472f310a000000     # "METALD-CFG/1\n\0\0\0"
SQUASHFS_MAGIC=68737173                         # "hsqs"
CFG_JSON_MAX=65472
DISK_WAIT=20                                    # half-seconds to wait for a first disk

hex() { od -An -v -tx1 | tr -d ' \n'; }
head_hex() { dd if="$1" bs="$2" count=1 2>/dev/null | hex; }

block_devices() {
        for d in /sys/class/block/*; do
                n=${d##*/}
                case $n in loop*|ram*|zram*|sr*|'*') continue ;; esac
                echo "/dev/$n"
        done
}

# cfg_hostname DEV: the hostname of a valid record at the start of DEV.
cfg_hostname() {
        [ "$(head_hex "$1" 16)" = "$CFG_MAGIC" ] || return 1
        dd if="$1" of=/tmp/rec bs=4096 count=16 2>/dev/null || return 1
        len=$(od -An -tu4 -j16 -N4 /tmp/rec | tr -d ' ')
        [ -n "$len" ] && [ "$len" -le "$CFG_JSON_MAX" ] || return 1
        tail -c +65 /tmp/rec | head -c "$len" >/tmp/cfg.json
        [ "$(wc -c </tmp/cfg.json)" -eq "$len" ] || return 1
        want=$(dd if=/tmp/rec bs=1 skip=24 count=32 2>/dev/null | hex)
        got=$(sha256sum /tmp/cfg.json | cut -d' ' -f1)
        [ "$want" = "$got" ] || return 1
        # hostnames never need JSON escapes, so sed can take the value
        host=$(tr -d '\n' </tmp/cfg.json |
               sed -n 's/.*"hostname"[[:space:]]*:[[:space:]]*"\([a-z0-9.-]*\)".*/\1/p')
        [ -n "$host" ] && echo "$host"
}

# find_device TEST: the first block device for which TEST DEV succeeds,
# waiting a while for the disk drivers to probe.
find_device() {
        i=0 seen=0
        while [ $i -lt $DISK_WAIT ] && [ $seen -lt 3 ]; do
                devs=$(block_devices)
                for dev in $devs; do
                        "$1" "$dev" && return 0
                done
                # the disks probe together: give late partitions a second, not more
                [ -n "$devs" ] && seen=$((seen + 1))
                i=$((i + 1))
                sleep 0.5
        done
        return 1
}

is_squashfs() { [ "$(head_hex "$1" 4)" = "$SQUASHFS_MAGIC" ] && echo "$1"; }

mount_basics() {
        mount -t proc proc /proc
        mount -t sysfs sys /sys
        # no redirection before /dev is there: a read-only root could not create /dev/null
        grep -q ' /dev ' /proc/mounts || mount -t devtmpfs dev /dev
        mount -t tmpfs tmp /tmp
}

load_modules() {
        [ -f /lib/modules/order ] || return 0
        while read -r m; do insmod "/lib/modules/$m" 2>/dev/null; done </lib/modules/order
}

marker() {
        host=$(find_device cfg_hostname) || host="(none)"
        echo 1 >/proc/sys/kernel/printk
        echo "METALD-IMAGE name=$NAME version=$VERSION hostname=$host" >/dev/console
        sync
        poweroff -f
}

mount_basics
case $ROLE in
disk|rootfs)
        load_modules
        marker
        ;;
diskless)
        load_modules
        if root=$(find_device is_squashfs) && mount -t squashfs -o ro "$root" /newroot; then
                umount /tmp /dev /sys /proc
                exec switch_root /newroot /sbin/init
        fi
        echo "METALD-IMAGE-ERROR name=$NAME: no squashfs root found" >/dev/console
        poweroff -f
        ;;
esac
