#!/bin/bash
# `metald machine reimage --wait` of a machine whose profile reaches its power
# through IPMI: OpenIPMI's ipmi_sim is the BMC of a QEMU machine (as in
# test_power.sh) and starts that QEMU on power-on. The machine enrolls, waits
# for an image that is not imported yet, is powered off and fails when its
# agent goes silent; the image is imported and the reimage powers it on
# through ipmitool lanplus, so that it network-boots, installs the image,
# reboots into it and prints its marker. The BMC password is in a 0600 file
# and never in metald's log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/install_lib.sh"
install_tier_check
need ipmi_sim ipmitool
START=$SECONDS
install_setup
mkdir -p "$T/bmc/state"
PASSWORD=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 16)
[ ${#PASSWORD} -eq 16 ] || fail "could not make a password"
(umask 077; printf '%s\n' "$PASSWORD" >"$T/bmc.pass")
# long enough for an enrollment boot to register (about 15 s under TCG), short enough to fail the
# powered-off machine quickly
AGENT_TIMEOUT=45s install_config <<CFG
profiles:
  - name: rack
    match: { mac: "52:54:00:f2:*" }
    image: test-bios
    approval: auto
    install: { disk: largest }
    power: { driver: ipmi, host: 127.0.0.1, port: 9001, user: metald, password_file: $T/bmc.pass, cipher_suite: 3 }
CFG
metald_start "$LAB"

NAME=m-525400f20003
MARKER="METALD-IMAGE name=test-bios version=1 hostname=$NAME"
truncate -s 256M "$T/disk.img"
touch "$T/$NAME.serial"
VM_PIDFILE="$T/vm.pid"
EXIT_HOOKS+=('[ -s "$VM_PIDFILE" ] && kill "$(cat "$VM_PIDFILE")" 2>/dev/null')
VM="qemu-system-x86_64 -accel tcg -m 768 -display none -pidfile $VM_PIDFILE"
VM+=" -chardev file,id=ser,path=$T/$NAME.serial,append=on -serial chardev:ser"
VM+=" -netdev tap,id=n0,ifname=tap0,script=no,downscript=no"
VM+=" -device e1000,netdev=n0,mac=52:54:00:f2:00:03,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom,bootindex=1"
VM+=" -drive file=$T/disk.img,format=raw,if=none,id=d0 -device virtio-blk-pci,drive=d0,bootindex=2"
VM+=" -chardev socket,id=ipmi0,host=127.0.0.1,port=9002,reconnect=1 -device ipmi-bmc-extern,chardev=ipmi0,id=bmc0"
VM+=" -device isa-ipmi-kcs,bmc=bmc0"
cat >"$T/bmc/lan.conf" <<EOF2
name "metaldtest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 9001
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  serial 15 127.0.0.1 9002 codec VM
  startcmd "$VM"
  startnow true
  poweroff_wait 10
  kill_wait 5
  user 2 true "metald" "$PASSWORD" admin 10 md5
EOF2
chmod 0600 "$T/bmc/lan.conf"
cat >"$T/bmc/sim.emu" <<'EOF2'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
mc_enable 0x20
EOF2
bg "$LAB" ipmi_sim -c "$T/bmc/lan.conf" -f "$T/bmc/sim.emu" -s "$T/bmc/state" -n >"$T/bmc/ipmi_sim.log" 2>&1 </dev/null
IPMI=(--driver ipmi --host 127.0.0.1 --port 9001 --user metald --password-file "$T/bmc.pass" --cipher-suite 3)

log "the machine enrolls; its image is not imported yet"
wait_until 600 state_is "$NAME" approved 2>/dev/null || fail "$NAME did not enroll: $(tail -c 2000 "$T/$NAME.serial")"
wait_until 60 grep -aq "not imported" "$T/$NAME.serial" || log "(the agent did not print why it waits)"
in_ns "$LAB" "$METALD" power off "${IPMI[@]}" >/dev/null || fail "ipmi power off failed"
wait_state "$NAME" failed 90
log "$NAME failed: $(ctl machine show "$NAME" --json | jq -r .reason)"

import_image test-bios
log "reimage $NAME --wait (the ipmi driver powers it on)"
t0=$SECONDS
rc=0
ctl machine reimage "$NAME" --wait --timeout 10m >"$T/reimage.out" 2>&1 || rc=$?
cat "$T/reimage.out" >&2
[ $rc -eq 0 ] || fail "reimage --wait exited $rc"
grep -qE "^$NAME is approved; (powered on|power-cycled) through ipmi" "$T/reimage.out" ||
        fail "reimage did not power the machine through ipmi"
grep -q "^$NAME is ready, .* after the reimage" "$T/reimage.out" || fail "reimage --wait did not report ready"
log "reimage took $((SECONDS - t0))s"
wait_markers "$NAME" 1 300 "$MARKER"
grep -q "machine $NAME: reimage: \(powered on\|power-cycled\) through ipmi" "$T/metald.log" ||
        fail "metald did not log the power operation"
grep -qF "$PASSWORD" "$T/metald.log" "$T/reimage.out" && fail "the BMC password appeared in metald's output"
metald_stop
log "ok after $((SECONDS - START))s"
