#!/bin/bash
# A profile's netboot through the real daemon: a machine approved with a
# netboot profile gets that kernel, initrd and command line from /boot.ipxe on
# every network boot (not the enrollment environment), stays approved without
# an agent, and `metald status` / `machine show` call it unsigned. The start-up
# check looks at its files; images.require_signed refuses the profile.
. "$(dirname "$0")/lib.sh"
need curl jq

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/24 "$CLI" vc0 10.77.0.2/24
mkdir -p "$T/root/rescue"
cp "$TOP/pxe/enroll.ipxe.tmpl" "$T/root/"
fake_kernel "$T/root/vmlinuz"
echo initrd >"$T/root/initrd.img"
fake_kernel "$T/root/rescue/vmlinuz"
echo rescue-initrd >"$T/root/rescue/initrd.img"
write_config() {        # write_config [IMAGES_SECTION]
        cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: debug
dhcp: { enabled: false }
tftp: { enabled: false }
http: { root: $T/root, port: 8080 }
boot:
  enroll: { kernel: vmlinuz, initrd: initrd.img, cmdline: "console=ttyS0" }
lifecycle: { agent_timeout: 10s, heartbeat: 2s }
profiles:
  - name: rescue
    match: { vendor: QEMU }
    netboot: { kernel: rescue/vmlinuz, initrd: rescue/initrd.img, cmdline: "console=ttyS0 rescue=1" }
  - { name: workers, image: flatcar }
${1:-}
CFG
}

log "images.require_signed refuses a netboot profile; a missing netboot kernel stops the start"
(cd "$T" && "$METALD" image keygen --out site >/dev/null) || fail "image keygen"
write_config "images: { trusted_keys: [$T/site.pub], require_signed: true }"
rc=0
"$METALD" config check --config "$T/metald.yaml" >/dev/null 2>"$T/check.err" || rc=$?
[ $rc = 2 ] || fail "config check with require_signed exited $rc"
grep -qxF "metald: $T/metald.yaml:14: profile rescue: netboot boots unsigned files, which images.require_signed refuses" \
        "$T/check.err" || fail "require_signed: $(cat "$T/check.err")"
write_config
mv "$T/root/rescue/vmlinuz" "$T/vmlinuz.away"
rc=0
"$METALD" config check --config "$T/metald.yaml" >/dev/null 2>"$T/check.err" || rc=$?
[ $rc = 2 ] || fail "config check without the netboot kernel exited $rc"
grep -qxF "metald: error: $T/root/rescue/vmlinuz: missing from http.root; the machines of profile rescue cannot boot its netboot" \
        "$T/check.err" || fail "missing netboot kernel: $(cat "$T/check.err")"
mv "$T/vmlinuz.away" "$T/root/rescue/vmlinuz"
"$METALD" config check --config "$T/metald.yaml" >/dev/null 2>"$T/check.err" || fail "config check: $(cat "$T/check.err")"
metald_start "$SRV"

API=http://10.77.0.1:8080
M=m-525400000001
UUID=8c1b5a2e-4c1e-4d5a-9f00-000000000001
ctl() { "$METALD" "$@" --socket "$T/control.sock"; }
post() {        # post PATH BODY [AUTH]: the response body in $T/body, fails unless 200
        local args=(-s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$2")
        [ -n "${3:-}" ] && args+=(-H "Authorization: Bearer $3")
        [ "$(in_ns "$CLI" curl "${args[@]}" "$API$1")" = 200 ] || fail "POST $1: $(cat "$T/body")"
}
script() {      # script PLATFORM: the boot script for the machine into $T/script
        in_ns "$CLI" curl -sf "$API/boot.ipxe?mac=52-54-00-00-00-01&uuid=$UUID&serial=S1&arch=x86_64&platform=$1" \
                >"$T/script" || fail "no boot script"
}
state_of() { ctl status --json | jq -r --arg n "$1" '.machines[] | select(.name == $n) | .state'; }

log "before approval: the enrollment environment"
script pcbios
NONCE=$(grep -oE 'metald\.nonce=[A-Za-z0-9_-]{22}' "$T/script" | cut -d= -f2)
[ -n "$NONCE" ] || fail "the enrollment script carries no nonce: $(cat "$T/script")"
INV='{"system":{"uuid":"'$UUID'","serial":"S1","vendor":"QEMU","product":"Standard PC"},"cpu":{"count":1,"model":"x"},"memory_bytes":536870912,"nics":[],"disks":[]}'
post /v1/agent/register "{\"nonce\":\"$NONCE\",\"boot_mac\":\"52:54:00:00:00:01\",\"inventory\":$INV}"
SESSION=$(jq -r .session "$T/body")
[ "$(jq -r .state "$T/body")" = registered ] || fail "not registered: $(cat "$T/body")"
[ "$(ctl status --json | jq -r '.machines[0].boot')" = enroll ] || fail "a registered machine does not enroll"

log "approved: the agent is told to reboot into the netboot"
ctl machine approve $M >/dev/null || fail "approve failed"
post /v1/agent/heartbeat '{"status":"idle"}' "$SESSION"
[ "$(jq -r .instruction.action "$T/body")" = reboot ] || fail "not told to reboot: $(cat "$T/body")"
[ "$(jq -r .instruction.reason "$T/body")" = "boot netboot profile rescue (unsigned)" ] ||
        fail "reboot reason: $(cat "$T/body")"

log "every network boot gets the netboot script, BIOS and UEFI"
for platform in pcbios efi pcbios; do
        script $platform
        [ $platform = efi ] && RD="initrd=initrd.img " || RD=""
        cat >"$T/want" <<EOF
#!ipxe
echo metald: $M boots netboot profile rescue (unsigned)
kernel $API/rescue/vmlinuz ${RD}console=ttyS0 rescue=1 || goto failed
initrd $API/rescue/initrd.img || goto failed
boot || goto failed
:failed
echo metald: the netboot did not boot; trying again in 30 seconds
sleep 30
chain --replace $API/boot.ipxe || goto failed
EOF
        diff -u "$T/want" "$T/script" >&2 || fail "the $platform netboot script differs"
done
# the files it names are served
in_ns "$CLI" curl -sf "$API/rescue/initrd.img" | grep -qx rescue-initrd || fail "the netboot initrd is not served"
cmp -s <(in_ns "$CLI" curl -sf "$API/rescue/vmlinuz") "$T/root/rescue/vmlinuz" || fail "the netboot kernel is not served"
grep -q 'script=netboot mac=52:54:00:00:00:01' "$T/metald.log" || fail "the access log does not name the netboot"
# the netboot environment is not the agent's: the old session is gone
[ "$(in_ns "$CLI" curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $SESSION" --data '{}' "$API/v1/agent/heartbeat")" = 401 ] ||
        fail "the enrollment session outlived the netboot"

log "shown as unsigned"
ctl status >"$T/status.txt" || fail "metald status failed"
grep -qE "^$M +52:54:00:00:00:01 +10\.77\.0\.2 +approved +rescue +netboot " "$T/status.txt" ||
        fail "status table: $(cat "$T/status.txt")"
grep -qE "^ +netboot rescue \(unsigned\)$" "$T/status.txt" || fail "status does not say unsigned: $(cat "$T/status.txt")"
ctl status --json | jq -e '.machines[0] | .boot == "netboot" and .signed == false and .netboot.kernel == "rescue/vmlinuz"' \
        >/dev/null || fail "status --json: $(ctl status --json | jq -c '.machines[0]')"
ctl machine show $M >"$T/show.txt"
grep -qxF "boot:        netboot rescue (unsigned): kernel rescue/vmlinuz, initrd rescue/initrd.img, cmdline console=ttyS0 rescue=1" \
        "$T/show.txt" || fail "machine show: $(cat "$T/show.txt")"
grep -qxF "cmdline:     -" "$T/show.txt" || fail "machine show names an enrollment command line: $(cat "$T/show.txt")"

log "no agent calls in, and no deadline fails it; a restart changes nothing"
sleep 16        # past the agent timeout and the sweep after it (every 5 s)
[ "$(state_of $M)" = approved ] || fail "the netboot machine left approved: $(state_of $M)"
metald_kill9
metald_start "$SRV"
script efi
grep -q "^kernel $API/rescue/vmlinuz initrd=initrd.img console=ttyS0 rescue=1 || goto failed$" "$T/script" ||
        fail "after a restart: $(cat "$T/script")"
[ "$(state_of $M)" = approved ] || fail "after a restart: $(state_of $M)"
metald_stop
