#!/bin/bash
# Builds metald's test images from Debian packages only: the Debian kernel
# that tests/integration/testboot.sh unpacks, busybox-static, syslinux (a
# BIOS-bootable MBR disk), systemd-boot-efi's stub (a UKI on the ESP of a
# UEFI-bootable GPT disk) and squashfs-tools (a diskless root). No loop
# devices, no mounts, no network once the kernel is there.
#
#   images/build-test-images.sh OUTDIR [--key KEYFILE]
#
# OUTDIR/NAME/        kernel, initrd and disk (raw) or rootfs
# OUTDIR/NAME.json    name, version, cmdline, raw_size and the config range
# OUTDIR/signed/NAME/ the signed image (`metald image sign --build`)
# OUTDIR/test-key.key, test-key.pub
#                     the test signing key, made once (without --key)
#
# Every image prints "METALD-IMAGE name=NAME version=V hostname=HOST" on
# ttyS0 and powers off (images/test-init.sh). A rerun with the same inputs
# reuses what OUTDIR holds. Environment: TESTBOOT (default build/testboot),
# METALD (the metald binary; default $METALD_BUILD/metald or build/metald).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
IMAGES="$TOP/images"
TESTBOOT=${TESTBOOT:-$TOP/build/testboot}

usage() { echo "usage: $0 OUTDIR [--key KEYFILE]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
KEY=
while [ $# -gt 0 ]; do
        case $1 in
        --key) [ $# -ge 2 ] || usage; KEY=$2; shift 2 ;;
        *) usage ;;
        esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf 'build-test-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for c in busybox cpio gzip sfdisk sgdisk mkfs.fat mcopy mmd syslinux objcopy objdump mksquashfs openssl sha256sum flock; do
        command -v "$c" >/dev/null || die "$c is not installed (tests/deps.sh)"
done
[ -x /bin/busybox ] || die "busybox-static is not installed"

readonly MIB=1048576
readonly DISK_SIZE=$((64 * MIB))        # sparse: only the partitions' data is mapped
readonly BOOT_START=$((1 * MIB))        # the boot partition (FAT) or ESP
readonly BOOT_SIZE=$((32 * MIB))
readonly CFG_START=$((33 * MIB))        # METALD-CFG
readonly CFG_SIZE=$((1 * MIB))
readonly CMDLINE="console=ttyS0,115200 panic=-1 loglevel=4"
readonly STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
readonly SYSLINUX_MBR=/usr/lib/syslinux/mbr/mbr.bin
readonly APPLETS="sh mount umount insmod dd od tr tail head wc cut sed sha256sum sleep sync poweroff switch_root cat echo"
# in load order; ahci and virtio so that q35 and virtio disks work as well as IDE
readonly DISK_MODULES="crypto/crct10dif_common.ko lib/crc-t10dif.ko lib/crc64.ko lib/crc64-rocksoft.ko
  block/t10-pi.ko drivers/scsi/scsi_common.ko drivers/scsi/scsi_mod.ko drivers/scsi/sd_mod.ko
  drivers/ata/libata.ko drivers/ata/ata_piix.ko drivers/ata/libahci.ko drivers/ata/ahci.ko
  drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_pci_legacy_dev.ko
  drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko"
readonly DISKLESS_MODULES="$DISK_MODULES fs/squashfs/squashfs.ko"
readonly PACKAGES="busybox-static cpio gzip fdisk gdisk dosfstools mtools syslinux syslinux-common
  systemd-boot-efi binutils squashfs-tools"
export MTOOLS_SKIP_CHECK=1 LC_ALL=C

# One builder at a time per OUTDIR; temporary files live in OUTDIR and go on exit.
exec 9>"$OUT/.lock"
flock -w 900 9 || die "$OUT is locked by another build"
TMP=$(mktemp -d "$OUT/.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

[ -s "$TESTBOOT/vmlinuz" ] || "$TOP/tests/integration/testboot.sh" "$TESTBOOT" >&2
KERNEL="$TESTBOOT/vmlinuz"
KVER=$(ls "$TESTBOOT/modules")
MODDIR="$TESTBOOT/modules/$KVER/kernel"
[ -d "$MODDIR" ] || die "no module tree in $TESTBOOT/modules"

# The digest of everything an image is made from: a rerun whose digest
# matches the one recorded in OUTDIR/NAME.json keeps what is there.
inputs_digest() {
        local name=$1 version=$2 mods=$3 m f
        {
                echo "$name $version $CMDLINE $DISK_SIZE $BOOT_START $BOOT_SIZE $CFG_START $CFG_SIZE"
                dpkg-query -W -f '${Package} ${Version}\n' $PACKAGES 2>/dev/null || true
                for f in "$IMAGES/build-test-images.sh" "$IMAGES/test-init.sh" "$KERNEL" /bin/busybox \
                         "$STUB" "$SYSLINUX_MBR"; do sha256sum <"$f"; done
                for m in $mods; do sha256sum <"$MODDIR/$m"; done
        } | sha256sum | cut -d' ' -f1
}

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null; }

# build_initrd NAME VERSION ROLE MODULES FILE: the busybox initramfs (or, for
# ROLE rootfs, the root directory FILE) that runs images/test-init.sh.
make_root() {
        local root=$1 name=$2 version=$3 role=$4 a
        mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,newroot}
        cp /bin/busybox "$root/bin/busybox"
        for a in $APPLETS; do ln -s busybox "$root/bin/$a"; done
        printf 'NAME=%s\nVERSION=%s\nROLE=%s\n' "$name" "$version" "$role" >"$root/etc/metald-test-image"
}

build_initrd() {
        local name=$1 version=$2 role=$3 mods=$4 file=$5 root m
        root=$(mktemp -d "$TMP/initrd.XXXXXX")
        make_root "$root" "$name" "$version" "$role"
        install -m 0755 "$IMAGES/test-init.sh" "$root/init"
        mkdir -p "$root/lib/modules"
        for m in $mods; do
                [ -f "$MODDIR/$m" ] || die "kernel $KVER has no $m"
                cp "$MODDIR/$m" "$root/lib/modules/"
                basename "$m" >>"$root/lib/modules/order"
        done
        find "$root" -exec touch -h -d @0 {} +
        (cd "$root" && find . | sort | cpio -o -H newc --quiet --reproducible | gzip -9n) >"$file"
        rm -rf "$root"
}

# fat_image FILE LABEL: an empty FAT16 file system of BOOT_SIZE that knows
# it starts BOOT_START into its disk (hidden sectors).
fat_image() {
        mkfs.fat -F 16 -n "$2" -i 4d455444 -h $((BOOT_START / 512)) -C "$1" $((BOOT_SIZE / 1024)) >/dev/null
}

# run_quiet CMD...: shows CMD's chatter only when it fails.
run_quiet() {
        local out
        out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; die "$1 failed"; }
}

# place FILE DISK OFFSET: copies FILE into DISK at OFFSET, leaving zeros unmapped.
place() { dd if="$1" of="$2" bs=$MIB seek=$(($3 / MIB)) conv=notrunc,sparse status=none; }

build_bios_disk() {
        local dir=$1 fat="$TMP/boot.fat"
        rm -f "$fat"
        truncate -s $DISK_SIZE "$dir/disk"
        sfdisk -q --no-reread --no-tell-kernel "$dir/disk" >/dev/null <<EOF
label: dos
label-id: 0x4d434647
unit: sectors
start=$((BOOT_START / 512)), size=$((BOOT_SIZE / 512)), type=e, bootable
start=$((CFG_START / 512)), size=$((CFG_SIZE / 512)), type=da
EOF
        fat_image "$fat" METALD-BOOT
        printf 'SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT image\nLABEL image\n  LINUX /vmlinuz\n  INITRD /initrd\n  APPEND %s\n' \
                "$CMDLINE" >"$TMP/syslinux.cfg"
        mcopy -m -i "$fat" "$dir/kernel" ::vmlinuz
        mcopy -m -i "$fat" "$dir/initrd" ::initrd
        mcopy -m -i "$fat" "$TMP/syslinux.cfg" ::syslinux.cfg
        syslinux --install "$fat"
        place "$fat" "$dir/disk" $BOOT_START
        dd if="$SYSLINUX_MBR" of="$dir/disk" bs=440 count=1 conv=notrunc status=none
        rm -f "$fat"
}

# build_uki OUT: linuxx64.efi.stub with .osrel, .cmdline, .linux and .initrd
# added as sections placed, page-aligned, after the stub's last one.
build_uki() {
        local uki=$1 dir=$2 end=0 vma size sec args=() file
        while read -r size vma; do
                [ $((16#$vma + 16#$size)) -gt $end ] && end=$((16#$vma + 16#$size))
        done < <(objdump -h "$STUB" | awk '$1 ~ /^[0-9]+$/ {print $3, $4}')
        printf 'ID=metald-test\nNAME="metald test image"\nVERSION_ID=1\nPRETTY_NAME="metald test image"\n' >"$TMP/osrel"
        printf '%s' "$CMDLINE" >"$TMP/cmdline"
        for sec in osrel:"$TMP/osrel" cmdline:"$TMP/cmdline" linux:"$dir/kernel" initrd:"$dir/initrd"; do
                file=${sec#*:}
                vma=$(((end + 4095) / 4096 * 4096))
                args+=(--add-section ".${sec%%:*}=$file" --change-section-vma ".${sec%%:*}=$(printf '0x%x' $vma)")
                end=$((vma + $(stat -c %s "$file")))
        done
        objcopy "${args[@]}" "$STUB" "$uki"
}

build_uefi_disk() {
        local dir=$1 esp="$TMP/esp.fat"
        rm -f "$esp"
        truncate -s $DISK_SIZE "$dir/disk"
        run_quiet sgdisk --disk-guid=4d434647-0000-4000-8000-000000000001 \
                -n 1:$((BOOT_START / 512)):$(((BOOT_START + BOOT_SIZE) / 512 - 1)) -t 1:ef00 -c 1:ESP \
                -u 1:4d434647-0000-4000-8000-000000000002 \
                -n 2:$((CFG_START / 512)):$(((CFG_START + CFG_SIZE) / 512 - 1)) -t 2:8300 -c 2:METALD-CFG \
                -u 2:4d434647-0000-4000-8000-000000000003 "$dir/disk"
        build_uki "$TMP/BOOTX64.EFI" "$dir"
        fat_image "$esp" ESP
        mmd -i "$esp" ::EFI ::EFI/BOOT
        mcopy -m -i "$esp" "$TMP/BOOTX64.EFI" ::EFI/BOOT/BOOTX64.EFI
        place "$esp" "$dir/disk" $BOOT_START
        rm -f "$esp" "$TMP/BOOTX64.EFI"
}

build_rootfs() {
        local name=$1 version=$2 file=$3 root
        root=$(mktemp -d "$TMP/rootfs.XXXXXX")
        make_root "$root" "$name" "$version" rootfs
        mkdir -p "$root/sbin"
        install -m 0755 "$IMAGES/test-init.sh" "$root/sbin/init"
        mksquashfs "$root" "$file" -noappend -quiet -no-progress -comp gzip -all-root \
                -mkfs-time 0 -all-time 0 >/dev/null
        rm -rf "$root"
}

# write_info NAME VERSION KIND DIGEST: OUTDIR/NAME.json, written last, so
# that an interrupted build is rebuilt next time.
write_info() {
        local name=$1 version=$2 kind=$3 digest=$4 extra=""
        if [ "$kind" != diskless ]; then
                extra=$(printf ', "raw_size": %d, "config": { "offset": %d, "length": %d }' $DISK_SIZE $CFG_START $CFG_SIZE)
        fi
        printf '{ "name": "%s", "version": %d, "kind": "%s", "cmdline": "%s", "inputs": "%s"%s }\n' \
                "$name" "$version" "$kind" "$CMDLINE" "$digest" "$extra" >"$OUT/$name.json.new"
        mv "$OUT/$name.json.new" "$OUT/$name.json"
}

# build_image NAME VERSION KIND (bios | uefi | diskless)
build_image() {
        local name=$1 version=$2 kind=$3 mods=$DISK_MODULES role=disk digest dir
        [ "$kind" = diskless ] && mods=$DISKLESS_MODULES role=diskless
        digest=$(inputs_digest "$name" "$version" "$mods")
        if [ -f "$OUT/$name.json" ] && [ "$(json_field "$OUT/$name.json" inputs)" = "$digest" ]; then
                log "$name v$version: up to date"
                return 0
        fi
        local start=$SECONDS
        rm -f "$OUT/$name.json"
        dir="$TMP/$name"
        mkdir -p "$dir"
        cp "$KERNEL" "$dir/kernel"
        build_initrd "$name" "$version" "$role" "$mods" "$dir/initrd"
        case $kind in
        bios)     build_bios_disk "$dir" ;;
        uefi)     build_uefi_disk "$dir" ;;
        diskless) build_rootfs "$name" "$version" "$dir/rootfs" ;;
        esac
        rm -rf "$OUT/$name" "$OUT/signed/$name" "$OUT/signed/$name.stamp"
        mv "$dir" "$OUT/$name"
        write_info "$name" "$version" "$kind" "$digest"
        log "$name v$version: built in $((SECONDS - start))s"
}

# The test key: made once, never overwritten.
test_key() {
        if [ -n "$KEY" ]; then
                [ -r "$KEY" ] || die "cannot read $KEY"
                return 0
        fi
        KEY="$OUT/test-key.key"
        if [ ! -s "$KEY" ]; then
                (umask 077 && openssl genpkey -algorithm ed25519 -out "$KEY.new" 2>/dev/null)
                mv "$KEY.new" "$KEY"
                log "new test key $KEY"
        fi
        [ -s "$OUT/test-key.pub" ] || openssl pkey -in "$KEY" -pubout -out "$OUT/test-key.pub"
}

# expires_soon MANIFEST: true when the signature runs out within a week.
expires_soon() {
        python3 - "$1" <<'PY'
import datetime, json, sys
exp = datetime.datetime.strptime(json.load(open(sys.argv[1]))["expires"], "%Y-%m-%dT%H:%M:%SZ")
sys.exit(0 if exp - datetime.datetime.utcnow() < datetime.timedelta(days=7) else 1)
PY
}

find_metald() {
        if [ -n "${METALD:-}" ]; then echo "$METALD"; return; fi
        local b=${METALD_BUILD:-build}
        case $b in /*) ;; *) b="$TOP/$b" ;; esac
        [ -x "$b/metald" ] && echo "$b/metald" || echo "$TOP/build/metald"
}

# sign_image NAME: OUTDIR/signed/NAME/ through `metald image sign --build`
# (OUTDIR/NAME keeps the raw disk). Signed again when the inputs, the key or
# the metald that builds manifests change.
sign_image() {
        local name=$1 metald version stamp args
        metald=$(find_metald)
        [ -x "$metald" ] || die "$metald is not built (make all)"
        version=$(json_field "$OUT/$name.json" version)
        stamp="$(json_field "$OUT/$name.json" inputs) $(sha256sum <"$KEY" | cut -d' ' -f1) $(sha256sum <"$metald" | cut -d' ' -f1)"
        if [ -f "$OUT/signed/$name.stamp" ] && [ "$(cat "$OUT/signed/$name.stamp")" = "$stamp" ] &&
           ! expires_soon "$OUT/signed/$name/manifest.json"; then
                return 0
        fi
        rm -rf "$OUT/signed/$name" "$OUT/signed/$name.stamp"
        mkdir -p "$OUT/signed"
        args=(image sign "$OUT/$name" --key "$KEY" --build --name "$name" --version "$version"
              --cmdline "$CMDLINE" --out "$TMP/signed-$name")
        run_quiet "$metald" "${args[@]}"
        mv "$TMP/signed-$name" "$OUT/signed/$name"
        echo "$stamp" >"$OUT/signed/$name.stamp"
        log "$name v$version: signed"
}

test_key
build_image test-bios 1 bios
build_image test-uefi 1 uefi
build_image test-diskless 1 diskless
for n in test-bios test-uefi test-diskless; do sign_image "$n"; done
