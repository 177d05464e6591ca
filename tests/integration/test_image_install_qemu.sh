#!/bin/bash
# What metald is for, end to end: bare QEMU machines network-boot, enroll,
# are approved by their profile, install a signed test image that metald
# serves (the agent streams and verifies every chunk), and boot it from
# their disk: the image prints its marker with the hostname metald wrote into
# its METALD-CFG record. A BIOS machine (SeaBIOS, iPXE sanboot) and a UEFI
# one (OVMF) install at the same time. The UEFI machine's installed disk is
# then booted on its own: OVMF treats iPXE's `exit` as a successful boot and
# opens its boot menu instead of trying the disk (docs/LIFECYCLE.md).
# `metald machine reimage --wait` then power-cycles the BIOS machine over QMP
# and waits until it is ready again with the image reinstalled. Last, the
# catalog's copy of the disk gets one flipped byte in a middle chunk: the
# reinstall fails naming that chunk, and the disk it leaves boots nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_lib.sh"
install_tier_check
[ -f /usr/share/ovmf/OVMF.fd ] || skip "ovmf is not installed"
START=$SECONDS
install_setup
lab_tap tap1
install_config <<CFG
profiles:
  - name: bios
    match: { mac: "52:54:00:f0:*" }
    image: test-bios
    approval: auto
    install: { disk: largest }
    power: { driver: qemu, socket: "$T/{mac}.qmp" }
  - name: uefi
    match: { mac: "52:54:00:f1:*" }
    image: test-uefi
    approval: auto
    install: { disk: largest }
    power: { driver: qemu, socket: "$T/{mac}.qmp" }
CFG
import_image test-bios
import_image test-uefi
metald_start "$LAB"

BIOS=m-525400f00001
UEFI=m-525400f10002
BIOS_MARKER="METALD-IMAGE name=test-bios version=1 hostname=$BIOS"
UEFI_MARKER="METALD-IMAGE name=test-uefi version=1 hostname=$UEFI"
truncate -s 256M "$T/bios.img" "$T/uefi.img"
vm_start "$BIOS" bios 52:54:00:f0:00:01 tap0 "$T/bios.img"
vm_start "$UEFI" uefi 52:54:00:f1:00:02 tap1 "$T/uefi.img"

log "first installs (BIOS and UEFI)"
wait_markers "$BIOS" 1 900 "$BIOS_MARKER"
log "$BIOS booted its image after $((SECONDS - START))s"
wait_until 600 state_is "$UEFI" ready || fail "$UEFI is not ready: $(ctl machine show "$UEFI" 2>&1 | tail -5)"
for m in "$BIOS" "$UEFI"; do
        ctl machine show "$m" --json >"$T/$m.json"
        [ "$(jq -r .state "$T/$m.json")" = ready ] || fail "$m is not ready: $(jq -c '{state,reason}' "$T/$m.json")"
        for ev in install-started install-succeeded; do
                jq -e --arg e "$ev" '.timeline[] | select(.event == $e)' "$T/$m.json" >/dev/null ||
                        fail "$m: no $ev in its timeline"
        done
done
jq -e '.timeline[] | select(.event == "boot-local")' "$T/$BIOS.json" >/dev/null || fail "$BIOS: no boot-local"
vm_stop "$UEFI"
: >"$T/uefi-disk.serial"
timeout --kill-after=5 120 qemu-system-x86_64 -accel tcg -m 256 -display none -no-reboot -nic none \
        -bios /usr/share/ovmf/OVMF.fd -serial "file:$T/uefi-disk.serial" \
        -drive "file=$T/uefi.img,format=raw,if=virtio" >"$T/uefi-disk.qemu.log" 2>&1 || true
[ "$(markers uefi-disk)" = "$UEFI_MARKER" ] || fail "$UEFI's installed disk did not boot its image: $(markers uefi-disk)"
log "$UEFI's installed disk boots its image (OVMF, disk only) after $((SECONDS - START))s"

log "reimage $BIOS --wait (the qemu driver power-cycles it)"
t0=$SECONDS
rc=0
ctl machine reimage "$BIOS" --image test-bios:1 --wait --timeout 10m >"$T/reimage1.out" 2>&1 || rc=$?
cat "$T/reimage1.out" >&2
[ $rc -eq 0 ] || fail "reimage --wait exited $rc"
grep -q "^$BIOS is approved; powered on through qemu\|^$BIOS is approved; power-cycled through qemu" \
        "$T/reimage1.out" || fail "reimage did not say how it powered the machine"
grep -q "^$BIOS is ready, .* after the reimage" "$T/reimage1.out" || fail "reimage --wait did not report ready"
grep -qE "install-succeeded +imaged" "$T/reimage1.out" || fail "the timeline since the reimage has no install"
log "reimage took $((SECONDS - t0))s"
wait_markers "$BIOS" 2 300 "$BIOS_MARKER"
ctl machine show "$BIOS" --json | jq -e '.image == "test-bios" and .image_version == 1 and
        .image_source == "machine"' >/dev/null || fail "the machine's own image is not shown"

log "a tampered chunk in the catalog"
DISK="$T/state/images/test-bios/1/disk"
[ -f "$DISK" ] || fail "no imported disk at $DISK"
# the file offset and index of the middle chunk of the disk artifact
read -r CHUNK OFF SIZE < <(python3 - "$T/state/images/test-bios/1/manifest.json" <<'PY'
import json, sys
chunks = json.load(open(sys.argv[1]))["artifacts"]["disk"]["chunks"]
i = len(chunks) // 2
print(i, sum(c["size"] for c in chunks[:i]), chunks[i]["size"])
PY
)
[ "$CHUNK" -ge 1 ] || fail "the disk has too few chunks to tamper with one in the middle"
cp "$DISK" "$T/disk.orig"
python3 - "$DISK" $((OFF + SIZE / 2)) <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x01]))
PY
cmp -s "$DISK" "$T/disk.orig" && fail "the byte did not flip"
rc=0
ctl machine reimage "$BIOS" --wait --timeout 10m >"$T/reimage2.out" 2>&1 || rc=$?
cat "$T/reimage2.out" >&2
[ $rc -eq 1 ] || fail "reimage --wait of a tampered image exited $rc, not 1"
grep -q "metald: $BIOS is failed: .*chunk" "$T/reimage2.out" || fail "the failure does not name the chunk"
ctl machine show "$BIOS" --json >"$T/failed.json"
[ "$(jq -r .state "$T/failed.json")" = failed ] || fail "$BIOS is not failed"
jq -e '.timeline[] | select(.event == "install-failed" and (.detail | test("chunk")))' "$T/failed.json" >/dev/null ||
        fail "no install-failed naming a chunk: $(jq -c '[.timeline[] | select(.event == "install-failed")]' "$T/failed.json")"
log "install-failed: $(jq -r '[.timeline[] | select(.event == "install-failed")][-1].detail' "$T/failed.json")"
vm_stop "$BIOS"
cp "$T/disk.orig" "$DISK"

# the disk it left, booted on its own (no NIC), for twice the 30 s or so a good one needs
: >"$T/tampered.serial"
timeout --kill-after=5 60 qemu-system-x86_64 -accel tcg -m 256 -display none -no-reboot -nic none \
        -serial "file:$T/tampered.serial" -drive "file=$T/bios.img,format=raw,if=virtio" >"$T/tampered.qemu.log" 2>&1 ||
        true
[ -z "$(markers tampered)" ] || fail "a disk whose install failed booted the image: $(markers tampered)"
log "the disk of the failed install boots nothing in 60 s"
metald_stop
log "ok after $((SECONDS - START))s"
