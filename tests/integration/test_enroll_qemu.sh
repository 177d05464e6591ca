#!/bin/bash
# The whole enrollment, end to end: an unknown QEMU machine network-boots,
# gets the enrollment environment metald built itself (kernel modules,
# metald-agent and its libraries, busybox), and its agent registers with the
# machine's real inventory. metald records the MAC, the SMBIOS UUID QEMU was
# given and the disks (a virtio one, and one on QEMU's default IDE controller,
# which needs ata_piix); the machine waits in registered until
# `metald machine approve`, and its agent sees the new instruction. A second
# machine under an auto profile needs no approval.
. "$(dirname "$0")/lib.sh"
need jq
lab_setup
testboot_root "$T/root"
MODULES=$(ls -d "$METALD_BUILD"/testboot/modules/*/ | head -1)
[ -x "$METALD_BUILD/metald-agent" ] || fail "metald-agent is not built"
cat >"$T/metald.yaml" <<CFG
server: { interface: br0, address: 10.77.0.1 }
state_dir: $T/state
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
lifecycle: { heartbeat: 2s, agent_timeout: 60s }
profiles:
  - { name: lab, match: { mac: "52:54:00:e0:*" }, image: flatcar, approval: manual }
  - { name: fleet, match: { mac: "52:54:00:e1:*" }, image: flatcar, approval: auto }
CFG
metald_start "$LAB"
grep -q "built enrollment initramfs" "$T/metald.log" || fail "metald did not build the enrollment initramfs"
ctl() { "$METALD" "$@" --socket "$T/control.sock"; }
machine_json() { ctl status --json | jq -c --arg m "$1" '.machines[] | select(.mac == $m)'; }

UUID1=6a0c3f4e-0b1d-4c52-9e1e-3b7a00000e01
truncate -s 2G "$T/disk1.img"
truncate -s 1536M "$T/disk1-ide.img"
QEMU_MEMORY=768
QEMU_EXTRA=(-drive "file=$T/disk1.img,format=raw,if=virtio" -drive "file=$T/disk1-ide.img,format=raw,if=ide")
qemu_boot vm1 bios 52:54:00:e0:00:01 "$UUID1"
wait_console vm1 300 "metald-agent: registered as m-525400e00001"
# every default module loads on a machine that has none of their firmware
LOADED=$(grep -a -m1 "metald-enroll: loaded " "$T/vm1.serial" | tr -d '\r')
case "$LOADED" in *failed:* | "") fail "the kernel modules did not all load: ${LOADED:-no report}" ;; esac
wait_until 20 grep -aq "waiting for an operator to approve" "$T/vm1.serial" || fail "the agent did not report its instruction"
M=$(machine_json 52:54:00:e0:00:01)
[ "$(jq -r .state <<<"$M")" = registered ] || fail "vm1 is not registered: $M"
[ "$(jq -r .uuid <<<"$M")" = "$UUID1" ] || fail "vm1's SMBIOS UUID: $(jq -r .uuid <<<"$M")"
[ "$(jq -r .profile <<<"$M")" = lab ] || fail "vm1's profile: $M"
ctl machine show m-525400e00001 --json >"$T/show.json"
jq -e '.inventory.disks[] | select(.name == "vda" and .size_bytes == 2147483648)' "$T/show.json" >/dev/null ||
        fail "the 2 GiB disk is not in the inventory: $(jq -c .inventory.disks "$T/show.json")"
jq -e '.inventory.disks[] | select(.name == "sda" and .size_bytes == 1610612736 and
        (.model | startswith("QEMU HARDDISK")) and .serial != "")' "$T/show.json" >/dev/null ||
        fail "the 1.5 GiB IDE disk is not in the inventory: $(jq -c .inventory.disks "$T/show.json")"
jq -e '.inventory.nics[] | select(.mac == "52:54:00:e0:00:01" and .link == true)' "$T/show.json" >/dev/null ||
        fail "the boot NIC is not in the inventory: $(jq -c .inventory.nics "$T/show.json")"
jq -e '.inventory.system.uuid == "'"$UUID1"'" and .inventory.cpu.count >= 1 and .inventory.memory_bytes > 0' \
        "$T/show.json" >/dev/null || fail "inventory: $(jq -c .inventory "$T/show.json")"
ctl status | grep -qE "^m-525400e00001 +52:54:00:e0:00:01 +10\.77\.0\.1[0-4][0-9] +registered +lab" ||
        fail "status table: $(ctl status)"

ctl machine approve m-525400e00001 >/dev/null || fail "approve failed"
[ "$(jq -r .state <<<"$(machine_json 52:54:00:e0:00:01)")" = approved ] || fail "approve did not move vm1 on"
# approved, and told why it waits: the profile's image is not in the catalog
wait_until 20 grep -aq "instruction wait: image flatcar is not imported (metald image import)" "$T/vm1.serial" ||
        fail "vm1's agent did not see the approval"
kill "$QEMU_PID" 2>/dev/null || true

log "a machine under an auto profile"
UUID2=6a0c3f4e-0b1d-4c52-9e1e-3b7a00000e02
truncate -s 1G "$T/disk2.img"
QEMU_EXTRA=(-drive "file=$T/disk2.img,format=raw,if=virtio")
qemu_boot vm2 bios 52:54:00:e1:00:02 "$UUID2"
wait_marker vm2 300 "metald-agent: registered as m-525400e10002"
[ "$(jq -r .state <<<"$(machine_json 52:54:00:e1:00:02)")" = approved ] || fail "the auto profile did not approve vm2"
ctl machine show m-525400e10002 --json | jq -e '.timeline[] | select(.event == "approve" and
        (.detail | contains("profile policy")))' >/dev/null || fail "vm2's approval is not in its timeline"
metald_stop
log "ok"
