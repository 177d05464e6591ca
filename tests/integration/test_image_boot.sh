#!/bin/bash
# The test images of images/build-test-images.sh boot from their raw disks,
# with no network: SeaBIOS -> syslinux on the MBR disk, OVMF -> the UKI on the
# GPT disk's ESP. Each prints its marker with the hostname of the METALD-CFG
# record written at the config range; a torn record gives "(none)"; a disk
# whose first MiB is zeroed boots nothing. The diskless image's initramfs
# switches to its squashfs root, which prints the marker.
. "$(dirname "$0")/lib.sh"
need qemu-system-x86_64 python3
[ -f /usr/share/ovmf/OVMF.fd ] || skip "ovmf is not installed"
asan_tier && skip "boots images in QEMU without metald: nothing here for the sanitizers"

IMG=${TEST_IMAGES:-$TOP/build/test-images}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-90}
CFG="$TOP/images/metald-cfg.py"
METALD="$METALD" "$TOP/images/build-test-images.sh" "$IMG" >&2
for n in test-bios test-uefi test-diskless; do
        "$METALD" image verify "$IMG/signed/$n" --trusted-key "$IMG/test-key.pub" >&2 ||
                fail "$n: the signed image does not verify"
done

# cfg_range NAME: "OFFSET LENGTH" of the image's config range.
cfg_range() {
        python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; print(c["offset"], c["length"])' \
                "$IMG/$1.json"
}

# disk_copy NAME HOSTNAME: a copy of NAME's disk with a record for HOSTNAME; echoes its path.
disk_copy() {
        local disk="$T/$1-$2.raw" off len
        read -r off len < <(cfg_range "$1")
        cp --sparse=always "$IMG/$1/disk" "$disk"
        python3 "$CFG" write "$disk" --offset "$off" --length "$len" --hostname "$2"
        [ "$(python3 "$CFG" read "$disk" --offset "$off")" = "{\"hostname\": \"$2\"}" ] || fail "record does not read back"
        echo "$disk"
}

# run_qemu RUN SECONDS ARGS...: runs a machine without network until it powers
# off or SECONDS pass; sets ELAPSED (seconds, one decimal).
run_qemu() {
        local run=$1 secs=$2 start rc=0
        shift 2
        : >"$T/$run.serial"
        start=$EPOCHREALTIME
        timeout --kill-after=5 "$secs" qemu-system-x86_64 -accel tcg -m 256 -display none -no-reboot -nic none \
                -serial "file:$T/$run.serial" "$@" >"$T/$run.qemu.log" 2>&1 || rc=$?
        ELAPSED=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
        [ $rc -eq 0 ] || [ $rc -eq 124 ] || { tail -5 "$T/$run.qemu.log" >&2; fail "$run: qemu exited with $rc"; }
}

markers() { tr -d '\r' <"$T/$1.serial" | grep -a '^METALD-IMAGE' || true; }

# expect_marker RUN LINE: the console shows exactly one marker, LINE.
expect_marker() {
        local got
        got=$(markers "$1")
        if [ "$got" != "$2" ]; then
                log "--- serial console of $1 ---"
                tail -c 3000 "$T/$1.serial" | tr -d '\r' >&2
                fail "$1: expected '$2', got '${got:-nothing}'"
        fi
        log "$1: '$2' after ${ELAPSED}s"
}

# disk_boots RUN FIRMWARE DISK: boots DISK from SeaBIOS (bios) or OVMF (uefi).
disk_boots() {
        local run=$1 fw=$2 disk=$3 secs=${4:-$BOOT_TIMEOUT} args=()
        [ "$fw" = uefi ] && args+=(-bios /usr/share/ovmf/OVMF.fd)
        run_qemu "$run" "$secs" "${args[@]}" -drive "file=$disk,format=raw"
}

# no_boot RUN FIRMWARE DISK SECONDS: with its first MiB zeroed, DISK boots nothing.
no_boot() {
        dd if=/dev/zero of="$3" bs=1M count=1 conv=notrunc status=none
        disk_boots "$1" "$2" "$3" "$4"
        [ -z "$(markers "$1")" ] || fail "$1: a disk without its first MiB booted"
        log "$1: no marker within ${ELAPSED}s"
}

bios=$(disk_copy test-bios node-7)
disk_boots bios bios "$bios"
expect_marker bios "METALD-IMAGE name=test-bios version=1 hostname=node-7"
bios_secs=${ELAPSED%.*}

uefi=$(disk_copy test-uefi node-7)
disk_boots uefi uefi "$uefi"
expect_marker uefi "METALD-IMAGE name=test-uefi version=1 hostname=node-7"
uefi_secs=${ELAPSED%.*}

# a torn write: the digest no longer matches the JSON
read -r off _ < <(cfg_range test-bios)
torn=$(disk_copy test-bios node-8)
printf 'X' | dd of="$torn" bs=1 seek=$((off + 70)) conv=notrunc status=none
disk_boots bios-torn bios "$torn"
expect_marker bios-torn "METALD-IMAGE name=test-bios version=1 hostname=(none)"

# twice the time the intact disk needed, and at least 30 s
no_boot bios-zeroed bios "$bios" $((bios_secs * 2 > 30 ? bios_secs * 2 : 30))
no_boot uefi-zeroed uefi "$uefi" $((uefi_secs * 2 > 30 ? uefi_secs * 2 : 30))

# diskless: the initramfs finds the squashfs root on one disk, the record on
# a METALD-CFG partition of another, and the root prints the marker
cfgdisk="$T/cfg-only.raw"
truncate -s 4M "$cfgdisk"
printf 'label: dos\nstart=2048, size=4096, type=da\n' | sfdisk -q "$cfgdisk" >/dev/null 2>&1 || fail "sfdisk failed"
python3 "$CFG" write "$cfgdisk" --offset 1048576 --length 2097152 --hostname node-9
D="$IMG/test-diskless"
run_qemu diskless "$BOOT_TIMEOUT" -kernel "$D/kernel" -initrd "$D/initrd" \
        -append "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"])' "$IMG/test-diskless.json")" \
        -drive "file=$D/rootfs,format=raw,snapshot=on" -drive "file=$cfgdisk,format=raw"
expect_marker diskless "METALD-IMAGE name=test-diskless version=1 hostname=node-9"
log "ok"
