#!/bin/bash
# `make demo`: a QEMU machine powers on in a private network namespace and
# network-boots through metald (DHCP, iPXE, the boot script), runs the
# enrollment environment metald builds itself, and registers with its
# hardware inventory; then the operator approves it. Every step is shown as it
# happens. Nothing leaves the namespace.
. "$(dirname "$0")/integration/lib.sh"
need jq

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
DEMO_STATE="$METALD_BUILD/demo/state"
rm -rf "$DEMO_STATE"            # every run starts from an empty registry, so it tells the same story
MAC=52:54:00:de:00:01
NAME=m-525400de0001

say "preparing the boot artifacts: Debian's kernel (unpacked, not installed) and its modules"
lab_setup
testboot_root "$T/root"
MODULES=$(ls -d "$METALD_BUILD"/testboot/modules/*/ | head -1)
mkdir -p "$DEMO_STATE"
cat >"$T/metald.yaml" <<CFG
server: { interface: br0, address: 10.77.0.1 }
state_dir: $DEMO_STATE
control: { socket: $T/control.sock }
dhcp:
  subnets: [{ network: 10.77.0.0/24, ranges: [10.77.0.100-10.77.0.150], router: 10.77.0.1 }]
tftp: { root: $T/root }
http: { root: $T/root, port: 8080 }
boot:
  enroll:
    kernel: vmlinuz
    build: { modules: ${MODULES%/}, agent: $METALD_BUILD/metald-agent, compression: zstd }
    cmdline: "console=ttyS0 panic=-1"
lifecycle: { heartbeat: 2s }
profiles:
  - { name: demo, match: { vendor: QEMU }, image: flatcar-stable, approval: manual }
CFG
ctl() { "$METALD" "$@" --socket "$T/control.sock"; }

say "network namespace $LAB: bridge br0 10.77.0.1/24, tap0 for the machine"
say "starting metald (DHCP, TFTP, HTTP, the enrollment initramfs it builds); state in $DEMO_STATE/metald.db"
metald_start "$LAB"
tail -n +1 -f --pid="$METALD_PID" "$T/metald.log" | sed -u 's/^[^ ]* metald\[[0-9]*\]: [a-z]*: /  [metald]  /' &
PIDS+=($!)

say "powering on a QEMU machine: SeaBIOS + iPXE, MAC $MAC, a 4 GiB disk (software emulation: about a minute)"
START=$SECONDS
truncate -s 4G "$T/disk.img"
QEMU_MEMORY=768
QEMU_EXTRA=(-drive "file=$T/disk.img,format=raw,if=virtio")
qemu_boot demo bios "$MAC" 6a0c3f4e-0b1d-4c52-9e1e-3b7a0000de01
tail -n +1 -f --pid="$QEMU_PID" "$T/demo.serial" | tr -d '\r' | grep --line-buffered -E '^metald-(enroll|agent)' |
        sed -u 's/^/  [machine] /' &
PIDS+=($!)
wait_console demo 300 "metald-agent: instruction wait: waiting for an operator"
sleep 1
say "registered after $((SECONDS - START)) s. What the operator sees:"
ctl status | sed 's/^/  /'
echo
ctl machine show "$NAME" | sed 's/^/  /'

say "approving it: metald machine approve $NAME"
ctl machine approve "$NAME" | sed 's/^/  /'
wait_console demo 30 "instruction wait: approved"
sleep 1
ctl status | sed 's/^/  /'
say "the machine's agent now waits for its image; imaging comes with the image pipeline"
metald_stop
