#!/bin/bash
# Shared helpers for integration tests: each test builds its own network
# namespaces, starts a real metald inside one, drives real clients from
# another, and cleans everything up on exit. Traffic never leaves the
# namespaces the test created.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
METALD_BUILD=${METALD_BUILD:-build}
case "$METALD_BUILD" in /*) ;; *) METALD_BUILD="$TOP/$METALD_BUILD" ;; esac
METALD="$METALD_BUILD/metald"
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/metald-${TEST_NAME}.XXXXXX")
readonly NS_ID="m$$"             # short, unique prefix for namespaces and links
PIDS=()
QEMU_EXTRA=()
METALD_PID=""
EXIT_HOOKS=()                   # commands run on exit, before namespaces go
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

cleanup() {
        local rc=$?
        set +e
        for h in "${EXIT_HOOKS[@]}"; do eval "$h"; done
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
        [ -n "$METALD_PID" ] && kill -TERM "$METALD_PID" 2>/dev/null && wait "$METALD_PID" 2>/dev/null
        # no wait here: waiting on one member of a background pipeline waits for all of it;
        # disowned, so that bash does not report each of them as "Killed"
        disown -a 2>/dev/null
        for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
        # namespaces are found by this test's prefix: ns_add runs in $(...) subshells
        for ns in $(ip netns list 2>/dev/null | awk -v p="$NS_ID-" 'index($1, p) == 1 {print $1}'); do
                # processes left in a namespace (clients that forked) go with it
                for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
                ip netns del "$ns" 2>/dev/null
        done
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
                log "FAILED (exit $rc); logs kept in $T"
        elif [ -z "${KEEP_TMP:-}" ]; then
                rm -rf "$T"
        fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
        log "FAIL: $*"
        if [ -f "$T/metald.log" ]; then
                log "--- last lines of metald.log ---"
                tail -n 40 "$T/metald.log" >&2
        fi
        exit 1
}
skip() { log "SKIP: $*"; exit 77; }
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done; }
# Whether this run is the sanitizer tier (make asan: METALD_BUILD=build/asan).
# Tests that spend their minutes in firmware rather than in metald skip it.
asan_tier() { case "$METALD_BUILD" in */asan) return 0 ;; esac; return 1; }

[ "$(id -u)" = 0 ] || skip "integration tests need root for network namespaces"
[ -x "$METALD" ] || fail "$METALD is not built"

# ns_add NAME: a fresh namespace with loopback up; echoes its full name
# ($NS_ID-NAME, which cleanup removes on exit).
ns_add() {
        local ns="$NS_ID-$1"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        echo "$ns"
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# veth NS1 IF1 ADDR1 NS2 IF2 ADDR2: a veth pair; an address of "-" leaves that end unaddressed.
veth() {
        local ns1=$1 if1=$2 a1=$3 ns2=$4 if2=$5 a2=$6
        ip link add "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2"
        [ "$a1" != - ] && ip -n "$ns1" addr add "$a1" dev "$if1"
        [ "$a2" != - ] && ip -n "$ns2" addr add "$a2" dev "$if2"
        ip -n "$ns1" link set "$if1" up
        ip -n "$ns2" link set "$if2" up
}

# bg NS CMD...: runs a command in the background inside a namespace; its pid is killed on exit.
bg() {
        local ns=$1; shift
        ip netns exec "$ns" "$@" &
        PIDS+=($!)
}

# wait_until SECONDS CMD...: polls CMD every 0.2 s until it succeeds or time runs out.
wait_until() {
        local secs=$1; shift
        local end=$((SECONDS + secs))
        until "$@"; do
                [ $SECONDS -ge $end ] && return 1
                sleep 0.2
        done
}

# metald_start NS [CONFIG]: starts metald in NS with $T/metald.yaml (or CONFIG)
# and waits until it tells us READY=1 over the sd_notify protocol, as it would
# tell systemd. Also used to start it again after a stop or kill -9.
metald_start() {
        local ns=$1 cfg=${2:-$T/metald.yaml} sock="$T/notify.sock"
        rm -f "$sock" "$sock.bound"
        python3 "$TOP/tests/integration/notify-wait.py" "$sock" 20 "$T/notify.log" &
        local waiter=$!
        wait_until 5 test -e "$sock.bound" || fail "notify listener did not start"
        NOTIFY_SOCKET="$sock" ip netns exec "$ns" "$METALD" serve --config "$cfg" >>"$T/metald.log" 2>&1 &
        METALD_PID=$!
        if ! wait "$waiter"; then
                kill -0 "$METALD_PID" 2>/dev/null || fail "metald exited during start-up"
                fail "metald did not report READY=1"
        fi
}

# metald_stop: SIGTERM, expect a clean exit 0 and no sanitizer report.
metald_stop() {
        [ -n "$METALD_PID" ] || return 0
        kill -TERM "$METALD_PID"
        local rc=0
        wait "$METALD_PID" || rc=$?
        METALD_PID=""
        metald_check_log
        [ $rc -eq 0 ] || fail "metald exited with status $rc"
}

# metald_kill9: the crash case; the process gets no chance to clean up.
metald_kill9() {
        [ -n "$METALD_PID" ] || return 0
        kill -9 "$METALD_PID"
        wait "$METALD_PID" 2>/dev/null || true
        METALD_PID=""
}

metald_check_log() {
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/metald.log" 2>/dev/null; then
                fail "sanitizer report in metald.log"
        fi
}

# expect_fail CMD...: the command must fail.
expect_fail() { if "$@"; then fail "expected failure: $*"; fi; }

# --- QEMU machines -----------------------------------------------------------

# lab_setup: a namespace "lab" with bridge br0 (10.77.0.1/24, where metald
# listens) and tap0 on the bridge for QEMU. Sets $LAB.
lab_setup() {
        need qemu-system-x86_64
        LAB=$(ns_add lab)
        ip -n "$LAB" link add br0 type bridge
        ip -n "$LAB" addr add 10.77.0.1/24 dev br0
        ip -n "$LAB" link set br0 up
        ip -n "$LAB" tuntap add tap0 mode tap
        ip -n "$LAB" link set tap0 master br0
        ip -n "$LAB" link set tap0 up
}

# lab_site_ns NAME ADDR: another host on the lab bridge (e.g. the site's DHCP server).
lab_site_ns() {
        local ns
        ns=$(ns_add "$1")
        ip link add "s-$NS_ID" netns "$LAB" type veth peer name eth0 netns "$ns"
        ip -n "$LAB" link set "s-$NS_ID" master br0
        ip -n "$LAB" link set "s-$NS_ID" up
        ip -n "$ns" addr add "$2" dev eth0
        ip -n "$ns" link set eth0 up
        echo "$ns"
}

# testboot_root DIR: an artifact root with the iPXE binaries and the test kernel + initrd.
testboot_root() {
        local dir=$1
        "$TOP/tests/integration/testboot.sh" "$METALD_BUILD/testboot" >&2
        mkdir -p "$dir"
        cp "$TOP"/pxe/* "$dir/"
        cp "$METALD_BUILD/testboot/vmlinuz" "$METALD_BUILD/testboot/test-initrd.img" "$dir/"
}

# fake_kernel FILE: the smallest file metald takes for an x86 kernel (a bzImage
# header and as many bytes as it announces), for tests that never boot it.
fake_kernel() {
        python3 - "$1" <<'PY'
import struct, sys
img = bytearray(4 * 512 + 64 * 16)
img[0x1f1] = 3                          # setup sectors after the boot sector
struct.pack_into("<I", img, 0x1f4, 64)  # 16-byte paragraphs of protected-mode code
img[0x202:0x206] = b"HdrS"
open(sys.argv[1], "wb").write(img)
PY
}

# fake_efi FILE MACHINE: the headers of an EFI application for MACHINE
# (0x8664 x64, 0x014c x86, 0x01c2 ARM32, 0xaa64 ARM64), for tests that never run it.
fake_efi() {
        python3 - "$1" "$2" <<'PY'
import struct, sys
img = bytearray(8192)
img[0:2] = b"MZ"
struct.pack_into("<I", img, 0x3c, 0x80)
img[0x80:0x84] = b"PE\0\0"
struct.pack_into("<H", img, 0x84, int(sys.argv[2], 0))
struct.pack_into("<H", img, 0x80 + 20, 240)     # size of the PE32+ optional header
struct.pack_into("<H", img, 0x80 + 24, 0x20b)
struct.pack_into("<H", img, 0x80 + 24 + 68, 10)  # subsystem: EFI application
open(sys.argv[1], "wb").write(img)
PY
}

# qemu_boot NAME FIRMWARE MAC [UUID]: boots a machine in the background.
#   bios       SeaBIOS + the iPXE ROM of QEMU's e1000 (iPXE does DHCP itself)
#   uefi-pxe   OVMF firmware PXE on virtio-net with no option ROM: firmware DHCP,
#              TFTP of ipxe.efi, then iPXE (efi-e1000.rom would boot its own
#              iPXE directly and skip the firmware path)
#   uefi-ipxe  OVMF + efi-e1000.rom: the ROM's iPXE on UEFI
#   uefi-http  OVMF UEFI HTTP Boot (PXE disabled through fw_cfg)
# Serial console goes to $T/NAME.serial; QEMU_EXTRA (an array) adds arguments.
qemu_boot() {
        local name=$1 fw=$2 mac=$3 uuid=${4:-}
        local args=(-accel tcg -m "${QEMU_MEMORY:-512}" -display none -no-reboot -serial "file:$T/$name.serial"
                    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no "${QEMU_EXTRA[@]}")
        [ -n "$uuid" ] && args+=(-uuid "$uuid")
        case "$fw" in
        bios)      args+=(-device "e1000,netdev=n0,mac=$mac,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom,bootindex=1") ;;
        uefi-pxe)  args+=(-bios /usr/share/ovmf/OVMF.fd -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=,bootindex=1") ;;
        uefi-ipxe) args+=(-bios /usr/share/ovmf/OVMF.fd
                          -device "e1000,netdev=n0,mac=$mac,romfile=/usr/lib/ipxe/qemu/efi-e1000.rom,bootindex=1") ;;
        uefi-http) args+=(-bios /usr/share/ovmf/OVMF.fd
                          -fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n
                          -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n
                          -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=,bootindex=1") ;;
        *) fail "unknown firmware $fw" ;;
        esac
        : >"$T/$name.serial"
        ip netns exec "$LAB" qemu-system-x86_64 "${args[@]}" >"$T/$name.qemu.log" 2>&1 &
        QEMU_PID=$!
        PIDS+=("$QEMU_PID")
}

# wait_console NAME SECONDS TEXT: waits for TEXT on the machine's serial
# console, leaving it running; fails with the console and metald's log.
wait_console() {
        local name=$1 secs=$2 text=$3
        if ! wait_until "$secs" grep -aq "$text" "$T/$name.serial"; then
                log "--- serial console of $name ---"
                tail -c 3000 "$T/$name.serial" | tr -d '\r' >&2
                log "--- qemu ---"
                tail -5 "$T/$name.qemu.log" >&2
                fail "$name did not reach '$text' within ${secs}s"
        fi
}

# wait_marker NAME SECONDS [TEXT]: as wait_console (TEXT defaults to the test
# initramfs marker), then powers the machine off.
wait_marker() {
        wait_console "$1" "$2" "${3:-METALD-TESTBOOT-OK}"
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
}

# lab_config MODE: metald.yaml for the lab (DHCP MODE full or proxy, TFTP and
# HTTP from $T/root with the test kernel as the enrollment boot).
lab_config() {
        cat >"$T/metald.yaml" <<CFG
server: { interface: br0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: ${LOG_LEVEL:-info}
dhcp:
  mode: $1
  subnets:
    - network: 10.77.0.0/24
      ranges: [10.77.0.100-10.77.0.150]
      router: 10.77.0.1
tftp: { root: $T/root }
http: { root: $T/root, port: 8080 }
boot:
  enroll: { kernel: vmlinuz, initrd: test-initrd.img, cmdline: "console=ttyS0 panic=-1" }
CFG
}

# marker_cmdline NAME: the kernel command line the test initramfs printed.
marker_cmdline() { grep -a -m1 METALD-TESTBOOT-OK "$T/$1.serial" | tr -d '\r' | sed 's/.*cmdline: //'; }
