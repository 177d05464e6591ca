#!/bin/bash
# OVMF firmware PXE (UEFI x64, option 93 = 7): DHCP from the firmware, TFTP
# of ipxe.efi, then iPXE's own DHCP, /boot.ipxe, and the kernel with
# initrd=<name> on its command line, which UEFI iPXE needs.
. "$(dirname "$0")/lib.sh"
[ -r /usr/share/ovmf/OVMF.fd ] || skip "ovmf is not installed"
lab_setup
testboot_root "$T/root"
lab_config full
metald_start "$LAB"

qemu_boot uefi1 uefi-pxe 52:54:00:e1:05:01
wait_marker uefi1 240
CMDLINE=$(marker_cmdline uefi1)
log "kernel command line: $CMDLINE"
grep -q "initrd=test-initrd.img" <<<"$CMDLINE" || fail "UEFI boot without initrd=<name>"
grep -q 'tftp: sent "ipxe.efi"' "$T/metald.log" || fail "the firmware did not fetch ipxe.efi over TFTP"
grep -q "platform=efi" "$T/metald.log" || fail "iPXE did not report platform=efi"
metald_stop
log "ok"
