#!/bin/bash
# `make demo`: a QEMU machine powers on in a private network namespace and
# network-boots through metald (DHCP, then iPXE, then the kernel and initrd
# over HTTP), with every step shown as it happens. Nothing leaves the namespace.
. "$(dirname "$0")/integration/lib.sh"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
DEMO_STATE="$METALD_BUILD/demo/state"
MAC=52:54:00:de:00:01

say "preparing the boot artifacts (Debian's kernel, unpacked, and a tiny busybox initramfs)"
lab_setup
testboot_root "$T/root"
lab_config full
sed -i "s|state_dir: .*|state_dir: $DEMO_STATE|" "$T/metald.yaml"
mkdir -p "$DEMO_STATE"

say "network namespace $LAB: bridge br0 10.77.0.1/24 with tap0 for the machine"
say "starting metald: full DHCP, TFTP and HTTP on br0; leases in $DEMO_STATE/metald.db"
metald_start "$LAB"
tail -n +1 -f "$T/metald.log" | sed -u 's/^[^ ]* metald\[[0-9]*\]: [a-z]*: /  [metald] /' &
PIDS+=($!)

say "powering on a QEMU machine: SeaBIOS + iPXE ROM, MAC $MAC (software emulation, about 30 s)"
START=$SECONDS
qemu_boot demo bios "$MAC"
wait_marker demo 240
sleep 0.5
say "the machine's console says:"
grep -a METALD-TESTBOOT-OK "$T/demo.serial" | tr -d '\r' | sed 's/^/  [machine] /'
say "booted in $((SECONDS - START)) s, entirely from metald. Lease on record:"
sqlite3 -separator ' ' "$DEMO_STATE/metald.db" "select hex(mac), address from leases" 2>/dev/null |
        while read -r mac addr; do
                printf '  %s  %d.%d.%d.%d\n' "$(sed 's/../&:/g; s/:$//' <<<"${mac,,}")" \
                        $((addr >> 24 & 255)) $((addr >> 16 & 255)) $((addr >> 8 & 255)) $((addr & 255))
        done
metald_stop
