#!/bin/bash
# Helpers of the tests that install the signed test images of
# images/build-test-images.sh on QEMU machines through metald (sourced after
# lib.sh). The images are built once into build/test-images and reused.

# These tests boot several machines under TCG, minutes each: the sanitizer
# tier (METALD_BUILD=build/asan) skips them unless METALD_SLOW_TESTS is set.
install_tier_check() {
        case "$METALD_BUILD" in
        */asan) [ -n "${METALD_SLOW_TESTS:-}" ] || skip "minutes of TCG boots; run with METALD_SLOW_TESTS=1 under ASan" ;;
        esac
}

# install_setup: the lab, the enrollment artifacts and the signed test images
# (IMG); sets MODULES.
install_setup() {
        need qemu-system-x86_64 jq python3
        [ -x "$METALD_BUILD/metald-agent" ] || fail "metald-agent is not built"
        IMG=${TEST_IMAGES:-$TOP/build/test-images}
        METALD="$METALD" "$TOP/images/build-test-images.sh" "$IMG" >&2 || fail "the test images did not build"
        for n in test-bios test-uefi; do
                [ -f "$IMG/signed/$n/manifest.json.sig" ] || fail "$IMG/signed/$n is not signed"
        done
        lab_setup
        testboot_root "$T/root"
        MODULES=$(ls -d "$METALD_BUILD"/testboot/modules/*/ | head -1)
        MODULES=${MODULES%/}
}

# lab_tap NAME: another tap on the lab bridge.
lab_tap() {
        ip -n "$LAB" tuntap add "$1" mode tap
        ip -n "$LAB" link set "$1" master br0
        ip -n "$LAB" link set "$1" up
}

# install_config: metald.yaml with the enrollment environment metald builds
# and the test key trusted; the profiles come on stdin.
install_config() {
        cat >"$T/metald.yaml" <<CFG
server: { interface: br0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: ${LOG_LEVEL:-info}
dhcp:
  subnets: [{ network: 10.77.0.0/24, ranges: [10.77.0.100-10.77.0.150], router: 10.77.0.1 }]
tftp: { root: $T/root }
http: { root: $T/root, port: 8080 }
boot:
  enroll:
    kernel: vmlinuz
    build: { modules: $MODULES, agent: $METALD_BUILD/metald-agent, compression: zstd }
    cmdline: "console=ttyS0 panic=-1"
lifecycle: { heartbeat: 2s, agent_timeout: ${AGENT_TIMEOUT:-60s} }
images: { trusted_keys: [$IMG/test-key.pub] }
CFG
        cat >>"$T/metald.yaml"
}

# import_image NAME: the signed test image into metald's catalog.
import_image() {
        "$METALD" image import "$IMG/signed/$1" --config "$T/metald.yaml" >&2 || fail "import of $1 failed"
}

ctl() { "$METALD" "$@" --socket "$T/control.sock"; }
machine_state() { ctl machine show "$1" --json | jq -r .state; }
state_is() { [ "$(machine_state "$1")" = "$2" ]; }

# vm_start NAME FIRMWARE MAC TAP DISK: a machine that network-boots first
# (NIC bootindex 1, then DISK) with its QMP socket at $T/<mac hex>.qmp.
# -no-shutdown: an image that powers off stays off for the next power on;
# no -no-reboot: the agent reboots into the installed image. The serial
# console is appended to $T/NAME.serial across boots.
vm_start() {
        local name=$1 fw=$2 mac=$3 tap=$4 disk=$5 hex nic args
        hex=$(tr -d : <<<"$mac")
        case "$fw" in
        bios) nic="e1000,netdev=n0,mac=$mac,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom,bootindex=1"; args=() ;;
        uefi) nic="e1000,netdev=n0,mac=$mac,romfile=/usr/lib/ipxe/qemu/efi-e1000.rom,bootindex=1"
              args=(-bios /usr/share/ovmf/OVMF.fd) ;;
        *) fail "unknown firmware $fw" ;;
        esac
        touch "$T/$name.serial"
        ip netns exec "$LAB" qemu-system-x86_64 -accel tcg -m 768 -display none -no-shutdown "${args[@]}" \
                -chardev "file,id=ser,path=$T/$name.serial,append=on" -serial chardev:ser \
                -qmp "unix:$T/$hex.qmp,server=on,wait=off" \
                -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "$nic" \
                -drive "file=$disk,format=raw,if=none,id=d0" -device virtio-blk-pci,drive=d0,bootindex=2 \
                >"$T/$name.qemu.log" 2>&1 </dev/null &
        PIDS+=($!)
        eval "VM_PID_${name//-/_}=$!"
}

vm_stop() {
        local v="VM_PID_${1//-/_}"
        [ -n "${!v:-}" ] || return 0
        kill "${!v}" 2>/dev/null || true
        wait "${!v}" 2>/dev/null || true
}

markers() { tr -d '\r' <"$T/$1.serial" | grep -a '^METALD-IMAGE' || true; }
marker_count() { markers "$1" | grep -c . || true; }
has_markers() { [ "$(marker_count "$1")" -ge "$2" ]; }

# wait_markers NAME N SECONDS LINE: NAME's console shows its Nth marker, and
# every marker so far is LINE.
wait_markers() {
        local name=$1 n=$2 secs=$3 line=$4 got
        if ! wait_until "$secs" has_markers "$name" "$n"; then
                log "--- serial console of $name ---"
                tail -c 4000 "$T/$name.serial" | tr -d '\r' >&2
                log "--- $name in metald ---"
                ctl machine show "$name" 2>&1 | tail -25 >&2 || true
                fail "$name: marker $n did not appear within ${secs}s"
        fi
        got=$(markers "$name" | sort -u)
        [ "$got" = "$line" ] || fail "$name: expected only '$line', got '$got'"
}

# wait_state NAME STATE SECONDS
wait_state() {
        wait_until "$3" state_is "$1" "$2" ||
                fail "$1 is $(machine_state "$1"), not $2, after $3 s: $(ctl machine show "$1" | tail -15)"
}
