#!/bin/bash
# Restart metald between two boots of the same machine: the second boot gets
# the same address (the lease survived) and is identified the same way.
. "$(dirname "$0")/lib.sh"
lab_setup
testboot_root "$T/root"
lab_config full
metald_start "$LAB"

qemu_boot first bios 52:54:00:a1:05:01 8c1b5a2e-4c1e-4d5a-9f00-000000000a15
wait_marker first 180
IP1=$(grep -o "52:54:00:a1:05:01 -> ACK [0-9.]*" "$T/metald.log" | tail -1 | awk '{print $4}')
[ -n "$IP1" ] || fail "first boot got no lease"
metald_stop
metald_start "$LAB"
grep -q "1 bound leases restored" "$T/metald.log" || fail "the lease was not restored"
qemu_boot second bios 52:54:00:a1:05:01 8c1b5a2e-4c1e-4d5a-9f00-000000000a15
wait_marker second 180
IP2=$(grep -o "52:54:00:a1:05:01 -> ACK [0-9.]*" "$T/metald.log" | tail -1 | awk '{print $4}')
[ "$IP1" = "$IP2" ] || fail "address changed across the restart: $IP1 then $IP2"
N=$(grep -c "GET /boot.ipxe?mac=52-54-00-a1-05-01&uuid=8c1b5a2e-4c1e-4d5a-9f00-000000000a15" "$T/metald.log")
[ "$N" -ge 2 ] || fail "the machine was not identified the same way on both boots"
metald_stop
log "ok: $IP1 on both boots"
