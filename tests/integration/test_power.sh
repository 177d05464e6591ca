#!/bin/bash
# metald power against real machines: (a) the qemu driver over a QEMU's QMP
# socket; (b) the ipmi driver, IPMI 2.0 lanplus through ipmitool to OpenIPMI's
# ipmi_sim, which is the BMC of a QEMU machine (ipmi-bmc-extern on ipmi_sim's
# VM serial interface) and starts that QEMU on power-on. Each QEMU's firmware
# log (SeaBIOS on the debug console) shows every boot, so a reset or a power
# cycle must add a boot there. Everything runs on loopback of a namespace of
# this test; the BMC password is in a 0600 file and nowhere else.
. "$(dirname "$0")/lib.sh"
need qemu-system-x86_64 ipmi_sim ipmitool

NS=$(ns_add power)
QEMU_COMMON="-accel tcg -m 64 -display none -nodefaults -nic none"
# SeaBIOS prints this line once per boot (a reset takes it through a reboot)
boots() { local n; n=$(grep -ac "^BUILD: gcc" "$1" 2>/dev/null) || true; echo "${n:-0}"; }
more_boots() { [ "$(boots "$1")" -gt "$2" ]; }
power() { "$METALD" power "$@"; }
expect_state() {
        local want=$1 got; shift
        got=$(power status "$@") || fail "power status $*: exit $?"
        [ "$got" = "$want" ] || fail "power status $*: '$got', expected '$want'"
}
state_is() { [ "$(power status "${@:2}" 2>/dev/null)" = "$1" ]; }

# --- usage and the manual driver ---------------------------------------------
rc=0; power frob --driver qemu --socket /x >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "an unknown action exits $rc, not 2"
rc=0; power status --driver ipmi --host 127.0.0.1 >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "ipmi without user and password file exits $rc, not 2"
rc=0; power status --socket /x >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "no --driver exits $rc, not 2"
rc=0; out=$(power cycle --driver manual 2>&1) || rc=$?
[ $rc -eq 1 ] && grep -q "by hand" <<<"$out" || fail "manual cycle: exit $rc, '$out'"
rc=0; power status --driver qemu --socket "$T/none.qmp" 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q "cannot connect" "$T/err" || fail "a missing QMP socket: exit $rc, $(cat "$T/err")"

# --- (a) qemu: QMP ------------------------------------------------------------
QMP="$T/a.qmp"
# -no-shutdown: a guest that powers off stays, off, for the next "on"
in_ns "$NS" qemu-system-x86_64 $QEMU_COMMON -no-shutdown -qmp "unix:$QMP,server=on,wait=off" \
        -chardev "file,id=dbg,path=$T/a.fw.log" -device isa-debugcon,iobase=0x402,chardev=dbg \
        >"$T/a.qemu.log" 2>&1 </dev/null &
PIDS+=($!)
Q=(--driver qemu --socket "$QMP")
wait_until 20 test -S "$QMP" || fail "QEMU did not create its QMP socket"
wait_until 30 more_boots "$T/a.fw.log" 0 || fail "QEMU's firmware did not start"
expect_state on "${Q[@]}"

n=$(boots "$T/a.fw.log")
power reset "${Q[@]}" >/dev/null || fail "qemu reset failed"
wait_until 30 more_boots "$T/a.fw.log" "$n" || fail "qemu reset: the firmware did not start again"
expect_state on "${Q[@]}"

n=$(boots "$T/a.fw.log")
power cycle "${Q[@]}" >/dev/null || fail "qemu cycle failed"
wait_until 30 more_boots "$T/a.fw.log" "$n" || fail "qemu cycle: the firmware did not start again"
expect_state on "${Q[@]}"

power off "${Q[@]}" >/dev/null || fail "qemu off failed"
expect_state off "${Q[@]}"
n=$(boots "$T/a.fw.log")
sleep 2
[ "$(boots "$T/a.fw.log")" -eq "$n" ] || fail "qemu off: the machine kept booting"
power off "${Q[@]}" >/dev/null || fail "qemu off of an off machine failed"
expect_state off "${Q[@]}"
power on "${Q[@]}" >/dev/null || fail "qemu on failed"
expect_state on "${Q[@]}"
wait_until 30 more_boots "$T/a.fw.log" "$n" || fail "qemu on: the machine did not boot from its firmware"
power on "${Q[@]}" >/dev/null || fail "qemu on of an on machine failed"
# an ACPI button press: the firmware ignores it, the machine stays on
power soft-off "${Q[@]}" >/dev/null || fail "qemu soft-off failed"
expect_state on "${Q[@]}"
log "qemu driver: status, reset, cycle, off, on, soft-off ok"

# --- (b) ipmi: ipmitool lanplus -> ipmi_sim -> QEMU ----------------------------
mkdir -p "$T/bmc/state"
PASSWORD=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 16)
[ ${#PASSWORD} -eq 16 ] || fail "could not make a password"
(umask 077; printf '%s\n' "$PASSWORD" >"$T/bmc.pass")
VM_PID="$T/b.qemu.pid"
EXIT_HOOKS+=('[ -s "$VM_PID" ] && kill "$(cat "$VM_PID")" 2>/dev/null')
# ipmi_sim's own configuration holds the BMC's users, as a BMC's flash would
cat >"$T/bmc/lan.conf" <<EOF
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
  startcmd "qemu-system-x86_64 $QEMU_COMMON -pidfile $VM_PID -chardev file,id=dbg,path=$T/b.fw.log,append=on -device isa-debugcon,iobase=0x402,chardev=dbg -chardev socket,id=ipmi0,host=127.0.0.1,port=9002,reconnect=1 -device ipmi-bmc-extern,chardev=ipmi0,id=bmc0 -device isa-ipmi-kcs,bmc=bmc0"
  startnow true
  poweroff_wait 10
  kill_wait 5
  user 2 true "metald" "$PASSWORD" admin 10 md5
EOF
chmod 0600 "$T/bmc/lan.conf"
cat >"$T/bmc/sim.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
mc_enable 0x20
EOF
in_ns "$NS" ipmi_sim -c "$T/bmc/lan.conf" -f "$T/bmc/sim.emu" -s "$T/bmc/state" -n \
        >"$T/bmc/ipmi_sim.log" 2>&1 </dev/null &
PIDS+=($!)
I=(--driver ipmi --host 127.0.0.1 --port 9001 --user metald --password-file "$T/bmc.pass" --cipher-suite 3)
ipmi() { in_ns "$NS" "$METALD" power "$@" 2>>"$T/ipmi.err"; }
ipmi_state_is() { [ "$(ipmi status "${@:2}")" = "$1" ]; }
wait_until 30 ipmi_state_is on "${I[@]}" || fail "ipmi_sim did not answer power status with on: $(tail -3 "$T/ipmi.err")"
wait_until 30 more_boots "$T/b.fw.log" 0 || fail "the BMC's machine did not start"

n=$(boots "$T/b.fw.log")
ipmi reset "${I[@]}" >/dev/null || fail "ipmi reset failed: $(tail -1 "$T/ipmi.err")"
wait_until 30 more_boots "$T/b.fw.log" "$n" || fail "ipmi reset did not reach the machine"
log "ipmi reset: boots $n -> $(boots "$T/b.fw.log")"

ipmi off "${I[@]}" >/dev/null || fail "ipmi off failed: $(tail -1 "$T/ipmi.err")"
wait_until 30 ipmi_state_is off "${I[@]}" || fail "ipmi off: the BMC does not report off"
old=$(cat "$VM_PID" 2>/dev/null || true)
[ -n "$old" ] && kill -0 "$old" 2>/dev/null && fail "ipmi off: QEMU $old still runs"

n=$(boots "$T/b.fw.log")
ipmi on "${I[@]}" >/dev/null || fail "ipmi on failed: $(tail -1 "$T/ipmi.err")"
wait_until 30 ipmi_state_is on "${I[@]}" || fail "ipmi on: the BMC does not report on"
wait_until 30 more_boots "$T/b.fw.log" "$n" || fail "ipmi on: the machine did not boot"
wait_until 10 test -s "$VM_PID" || fail "ipmi on: no QEMU pid file"

old=$(cat "$VM_PID"); n=$(boots "$T/b.fw.log")
ipmi cycle "${I[@]}" >/dev/null || fail "ipmi cycle failed: $(tail -1 "$T/ipmi.err")"
wait_until 30 more_boots "$T/b.fw.log" "$n" || fail "ipmi cycle: the machine did not boot again"
wait_until 30 ipmi_state_is on "${I[@]}" || fail "ipmi cycle: the BMC does not report on"
new=$(cat "$VM_PID" 2>/dev/null || true)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "ipmi cycle: still QEMU $old (now '$new')"
log "ipmi driver: status, reset, off, on, cycle ok (QEMU $old -> $new)"

# refusals: a password file others may read, a wrong password, a missing ipmitool
cp "$T/bmc.pass" "$T/open.pass"; chmod 0644 "$T/open.pass"
rc=0; out=$(in_ns "$NS" "$METALD" power status "${I[@]}" --password-file "$T/open.pass" 2>&1) || rc=$?
[ $rc -eq 1 ] && grep -q "chmod 0600" <<<"$out" || fail "a 0644 password file: exit $rc, '$out'"
(umask 077; echo wrong-password >"$T/wrong.pass")
rc=0; out=$(in_ns "$NS" "$METALD" power status "${I[@]}" --password-file "$T/wrong.pass" --timeout 15s 2>&1) || rc=$?
[ $rc -eq 1 ] && grep -qE "ipmitool (exited|did not finish)" <<<"$out" || fail "a wrong password: exit $rc, '$out'"
log "wrong password: $out"
grep -qF "$PASSWORD" "$T/ipmi.err" && fail "the password appeared in metald's output"
true
