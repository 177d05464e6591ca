#!/bin/bash
# UEFI HTTP Boot: OVMF with PXE disabled sends vendor class HTTPClient and
# architecture 16; metald answers with the URL of ipxe.efi, which the firmware
# fetches over HTTP (HEAD, then GET) and which continues into /boot.ipxe.
. "$(dirname "$0")/lib.sh"
[ -r /usr/share/ovmf/OVMF.fd ] || skip "ovmf is not installed"
lab_setup
testboot_root "$T/root"
lab_config full
metald_start "$LAB"

qemu_boot http1 uefi-http 52:54:00:d1:05:01
wait_marker http1 240
grep -q "GET /ipxe.efi" "$T/metald.log" || fail "the firmware did not fetch ipxe.efi over HTTP"
grep -q "GET /boot.ipxe?mac=52-54-00-d1-05-01" "$T/metald.log" || fail "ipxe.efi did not reach the boot script"
grep -q "initrd=test-initrd.img" <<<"$(marker_cmdline http1)" || fail "UEFI boot without initrd=<name>"
metald_stop
log "ok"
