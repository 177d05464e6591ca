#!/bin/bash
# SeaBIOS + QEMU's iPXE ROM (e1000) boots the test kernel through metald in
# full DHCP mode: DHCP -> iPXE -> /boot.ipxe -> identity chain -> enrollment
# kernel + initrd over HTTP -> the initramfs prints its marker.
. "$(dirname "$0")/lib.sh"
lab_setup
testboot_root "$T/root"
lab_config full
metald_start "$LAB"

qemu_boot bios1 bios 52:54:00:b1:05:01
wait_marker bios1 180
CMDLINE=$(marker_cmdline bios1)
log "kernel command line: $CMDLINE"
grep -q "metald.url=http://10.77.0.1:8080" <<<"$CMDLINE" || fail "no metald.url on the command line"
grep -q "metald.mac=52:54:00:b1:05:01" <<<"$CMDLINE" || fail "no metald.mac on the command line"
grep -q "console=ttyS0" <<<"$CMDLINE" || fail "configured command line missing"
grep -q "initrd=" <<<"$CMDLINE" && fail "BIOS boot got an initrd= argument"
grep -q "ACK 10.77.0.1[0-4][0-9]" "$T/metald.log" || fail "no DHCP ACK logged"
grep -q "GET /boot.ipxe?mac=52-54-00-b1-05-01" "$T/metald.log" || fail "iPXE did not come back with its identity"
metald_stop
log "ok"
