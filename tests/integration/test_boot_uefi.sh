#!/bin/bash
# UEFI x64 (option 93 = 7), two ways. OVMF's own PXE on a NIC without an
# option ROM: DHCP from the firmware, TFTP of ipxe.efi, then iPXE's DHCP,
# /boot.ipxe, and the kernel with initrd=<name>, which UEFI iPXE needs. Then
# OVMF with QEMU's efi-e1000.rom, whose built-in iPXE claims the boot itself
# (the firmware PXE path never runs with that ROM) and must reach the same
# script and initrd= the same way.
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

qemu_boot uefi2 uefi-ipxe 52:54:00:e1:05:02
wait_marker uefi2 240
grep -q "initrd=test-initrd.img" <<<"$(marker_cmdline uefi2)" || fail "efi-e1000.rom boot without initrd=<name>"
grep -q "GET /boot.ipxe?mac=52-54-00-e1-05-02.*platform=efi" "$T/metald.log" || fail "efi-e1000.rom iPXE did not identify"
metald_stop
log "ok"
