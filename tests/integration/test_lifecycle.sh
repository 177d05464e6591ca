#!/bin/bash
# The machine lifecycle through the real daemon: curl plays the agent against
# /v1/agent/, `metald status` and `metald machine` play the operator over the
# control socket. Covers hostile agent input (a clear 4xx, nothing stored),
# kill -9 in each waiting state (state, timeline and the agent's session
# survive), a transient state failing cleanly at restart, deadlines, an
# identity conflict, automatic approval, retire and forget.
. "$(dirname "$0")/lib.sh"
need curl jq

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/24 "$CLI" vc0 10.77.0.2/24
mkdir -p "$T/root"
cp "$TOP/pxe/enroll.ipxe.tmpl" "$T/root/"
fake_kernel "$T/root/vmlinuz"
echo initrd >"$T/root/initrd.img"
openssl rand -hex 24 >"$T/admin.token"
cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock, admin_token_file: $T/admin.token }
log_level: debug
dhcp: { enabled: false }
tftp: { enabled: false }
http: { root: $T/root, port: 8080 }
boot:
  enroll: { kernel: vmlinuz, initrd: initrd.img, cmdline: "console=ttyS0" }
lifecycle: { agent_timeout: 12s, heartbeat: 2s, enroll_timeout: 10m }
profiles:
  - { name: lab, match: { vendor: QEMU }, image: flatcar, approval: manual, cluster: lab }
  - { name: fleet, match: { vendor: AutoCorp }, image: flatcar, approval: auto, hostname: "auto-{serial}" }
CFG
metald_start "$SRV"

API=http://10.77.0.1:8080
ctl() { "$METALD" "$@" --socket "$T/control.sock"; }
# api METHOD PATH [BODY] [AUTH]: prints the status code, body in $T/body
api() {
        local args=(-s -o "$T/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json')
        [ -n "${3:-}" ] && args+=(--data-binary "$3")
        [ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
        in_ns "$CLI" curl "${args[@]}" "$API$2"
}
expect() { local got; got=$(api "${@:2}"); [ "$got" = "$1" ] || fail "$2 $3: expected $1, got $got: $(cat "$T/body")"; }
# boot MAC: the enrollment script for that MAC; prints the nonce it carries
boot() {
        in_ns "$CLI" curl -sf "$API/boot.ipxe?mac=${1//:/-}&uuid=${2:-8c1b5a2e-4c1e-4d5a-9f00-000000000001}&serial=S1&arch=x86_64&platform=pcbios" \
                >"$T/script" || fail "no boot script"
        grep -oE 'metald\.nonce=[A-Za-z0-9_-]{22}' "$T/script" | cut -d= -f2
}
inventory() {   # inventory UUID VENDOR SERIAL
        printf '{"system":{"uuid":"%s","serial":"%s","vendor":"%s","product":"Standard PC"},' "$1" "$3" "$2"
        printf '"cpu":{"count":2,"model":"QEMU Virtual CPU"},"memory_bytes":536870912,'
        printf '"nics":[{"name":"eth0","mac":"52:54:00:00:00:01","link":true,"speed_mbps":1000}],'
        printf '"disks":[{"name":"vda","size_bytes":4294967296,"model":"","serial":"D1","rotational":true,"removable":false}]}'
}
register() {    # register NONCE MAC UUID VENDOR SERIAL
        printf '{"nonce":"%s","boot_mac":"%s","inventory":%s}' "$1" "$2" "$(inventory "$3" "$4" "$5")"
}
state_of() { ctl status --json | jq -r --arg n "$1" '.machines[] | select(.name == $n) | .state'; }
events_of() { ctl machine show "$1" --json | jq '.timeline | length'; }

M=m-525400000001
UUID=8c1b5a2e-4c1e-4d5a-9f00-000000000001
NONCE=$(boot 52:54:00:00:00:01)
[ -n "$NONCE" ] || fail "the enrollment script carries no nonce: $(cat "$T/script")"
[ "$(state_of $M)" = discovered ] || fail "first contact did not discover $M"
grep -q "$NONCE" "$T/metald.log" && fail "the nonce appears in metald's log"

log "kill -9 in discovered: state, timeline and the outstanding nonce survive"
BEFORE=$(events_of $M)
metald_kill9
metald_start "$SRV"
[ "$(state_of $M)" = discovered ] || fail "after kill -9 in discovered: state $(state_of $M)"
[ "$(events_of $M)" = "$BEFORE" ] || fail "after kill -9 in discovered: timeline changed"

log "hostile agent input: each refused, nothing stored"
BEFORE=$(events_of $M)
expect 400 POST /v1/agent/register '{"nonce": '
expect 400 POST /v1/agent/register '{"nonce":"x"} trailing'
expect 400 POST /v1/agent/register '[1,2]'
expect 400 POST /v1/agent/register "{\"nonce\":42,\"boot_mac\":\"52:54:00:00:00:01\",\"inventory\":$(inventory $UUID QEMU S1)}"
expect 400 POST /v1/agent/register "{\"nonce\":\"$NONCE\",\"boot_mac\":\"52:54:00:00:00:01\",\"inventory\":$(inventory $UUID QEMU S1),\"extra\":1}"
expect 400 POST /v1/agent/register "{\"nonce\":\"$NONCE\",\"boot_mac\":\"zz\",\"inventory\":$(inventory $UUID QEMU S1)}"
expect 400 POST /v1/agent/register "{\"nonce\":\"$NONCE\",\"boot_mac\":\"52:54:00:00:00:01\",\"inventory\":$(inventory $UUID $'QE\x01MU' S1)}"
expect 400 POST /v1/agent/register "{\"nonce\":\"$NONCE\",\"boot_mac\":\"52:54:00:00:00:01\",\"inventory\":$(inventory not-a-uuid QEMU S1)}"
expect 400 POST /v1/agent/register "$(printf '{"a":%.0s' $(seq 40))"
expect 413 POST /v1/agent/register "{\"pad\":\"$(head -c 70000 /dev/zero | tr '\0' a)\"}"
[ "$(in_ns "$CLI" curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data x \
        "$API/v1/agent/register")" = 415 ] || fail "wrong content type was not 415"
expect 405 GET /v1/agent/register
expect 404 POST /v1/agent/nonsense '{}'
expect 401 POST /v1/agent/register "$(register AAAAAAAAAAAAAAAAAAAAAA 52:54:00:00:00:01 $UUID QEMU S1)"
expect 401 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:02 $UUID QEMU S1)"
expect 401 POST /v1/agent/heartbeat '{}'
expect 401 POST /v1/agent/heartbeat '{}' AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
[ "$(jq -r .error "$T/body")" != null ] || fail "errors are not JSON objects with an error sentence"
[ "$(events_of $M)" = "$BEFORE" ] || fail "a refused call changed the timeline"
[ "$(state_of $M)" = discovered ] || fail "a refused call changed the state"

log "registration, then a replayed nonce"
expect 200 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:01 $UUID QEMU S1)"
SESSION=$(jq -r .session "$T/body")
[ "$(jq -r .state "$T/body")" = registered ] || fail "not registered: $(cat "$T/body")"
[ "$(jq -r .instruction.action "$T/body")" = wait ] || fail "no wait instruction"
expect 401 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:01 $UUID QEMU S1)"
grep -q "$SESSION" "$T/metald.log" && fail "the session secret appears in metald's log"
ctl status >"$T/status.txt" || fail "metald status failed"
grep -qE "^$M +52:54:00:00:00:01 +10\.77\.0\.2 +registered +lab +flatcar" "$T/status.txt" ||
        fail "status table: $(cat "$T/status.txt")"
ctl machine show $M >"$T/show.txt"
grep -q "disk: *vda *4.0 GiB" "$T/show.txt" || fail "inventory not shown: $(cat "$T/show.txt")"
# the command line the enrollment script handed the kernel, its nonce masked
WANT=$(sed -n 's/^kernel [^ ]* \(.*\) || goto failed$/\1/p' "$T/script" | sed 's/metald\.nonce=[^ ]*/metald.nonce=<hidden>/')
[ "$WANT" = "console=ttyS0 metald.url=$API metald.mac=52:54:00:00:00:01 metald.nonce=<hidden>" ] ||
        fail "unexpected kernel line in the script: $(grep '^kernel' "$T/script")"
[ "$(ctl machine show $M --json | jq -r .enroll_cmdline)" = "$WANT" ] ||
        fail "show --json: enroll_cmdline $(ctl machine show $M --json | jq .enroll_cmdline)"
[ "$(ctl machine show $M --json | jq -r .enroll_cmdline_efi)" = "initrd=initrd.img $WANT" ] ||
        fail "show --json: enroll_cmdline_efi $(ctl machine show $M --json | jq .enroll_cmdline_efi)"
grep -qxF "cmdline:     $WANT" "$T/show.txt" || fail "no command line shown: $(cat "$T/show.txt")"
grep -qxF "cmdline efi: initrd=initrd.img $WANT" "$T/show.txt" || fail "no UEFI command line shown: $(cat "$T/show.txt")"
grep -qxF "uuid:        $UUID" "$T/show.txt" || fail "uuid not shown: $(cat "$T/show.txt")"
grep -q "$NONCE" "$T/show.txt" && fail "machine show prints the nonce"

kill9_and_check() {     # the machine keeps its state and timeline; the agent's session still works
        local want=$1 events
        events=$(events_of $M)
        metald_kill9
        metald_start "$SRV"
        [ "$(state_of $M)" = "$want" ] || fail "after kill -9 in $want: state $(state_of $M)"
        [ "$(events_of $M)" = "$events" ] || fail "after kill -9 in $want: timeline changed"
        expect 200 POST /v1/agent/heartbeat '{"status":"still here"}' "$SESSION"
}
log "kill -9 in registered, approved and imaging"
kill9_and_check registered
ctl machine approve $M >/dev/null || fail "approve failed"
[ "$(state_of $M)" = approved ] || fail "approve did not move $M on"
ctl machine approve $M 2>"$T/err" && fail "approving twice succeeded"
grep -q "cannot approve $M: it is approved" "$T/err" || fail "unclear refusal: $(cat "$T/err")"
kill9_and_check approved
expect 409 POST /v1/agent/events '{"event":"install-succeeded"}' "$SESSION"
expect 200 POST /v1/agent/events '{"event":"install-started","detail":"vda","progress":0}' "$SESSION"
expect 200 POST /v1/agent/events '{"event":"install-progress","progress":40}' "$SESSION"
kill9_and_check imaging

log "a transient state fails cleanly at restart"
expect 200 POST /v1/agent/events '{"event":"install-succeeded","progress":100}' "$SESSION"
[ "$(jq -r .instruction.action "$T/body")" = reboot ] || fail "imaged machine not told to reboot"
expect 401 POST /v1/agent/heartbeat '{}' "$SESSION"
metald_kill9
metald_start "$SRV"
[ "$(state_of $M)" = failed ] || fail "imaged at restart should fail, is $(state_of $M)"
ctl machine show $M | grep -q "metald restarted before the next step" || fail "no restart reason"
ctl machine reimage $M >/dev/null && [ "$(state_of $M)" = approved ] || fail "reimage did not approve"

log "deadline: an agent that stops calling"
NONCE=$(boot 52:54:00:00:00:01)
expect 200 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:01 $UUID QEMU S1)"
wait_until 40 bash -c "[ \"\$('$METALD' status --json --socket '$T/control.sock' | jq -r '.machines[0].state')\" = failed ]" ||
        fail "the deadline did not fail the silent machine"
ctl machine show $M | grep -q "agent stopped responding" || fail "no deadline reason"

log "identity conflict, automatic approval, retire and forget"
NONCE=$(boot 52:54:00:00:00:01)
expect 409 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:01 11111111-2222-3333-4444-555555555555 QEMU S1)"
ctl machine show $M --json | jq -e '.timeline[] | select(.event == "identity-conflict")' >/dev/null ||
        fail "the identity conflict was not recorded"
NONCE=$(boot 52:54:00:00:00:09 8c1b5a2e-4c1e-4d5a-9f00-000000000009)
expect 200 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:09 8c1b5a2e-4c1e-4d5a-9f00-000000000009 AutoCorp X9)"
[ "$(jq -r .state "$T/body")" = approved ] || fail "the auto profile did not approve: $(cat "$T/body")"
[ "$(jq -r .machine "$T/body")" = auto-x9 ] || fail "the profile's host name template was not applied"
ctl machine retire auto-x9 >/dev/null || fail "retire failed"
in_ns "$CLI" curl -sf "$API/boot.ipxe?mac=52-54-00-00-00-09&arch=x86_64&platform=pcbios" | grep -q "retired" ||
        fail "a retired machine was not told so"
ctl machine forget auto-x9 >/dev/null || fail "forget failed"
ctl machine show auto-x9 >/dev/null 2>&1 && fail "a forgotten machine is still shown"

log "an all-zero or all-FF SMBIOS UUID is none"
NONCE=$(boot 52:54:00:00:00:0b 00000000-0000-0000-0000-000000000000)
ctl machine show m-52540000000b >"$T/show.txt"
grep -qx "uuid: *-" "$T/show.txt" || fail "an all-zero UUID is shown: $(grep uuid "$T/show.txt")"
expect 200 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:0b FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF QEMU S0)"
[ "$(jq -r .state "$T/body")" = registered ] || fail "an all-FF UUID was not registered: $(cat "$T/body")"
ctl machine show m-52540000000b --json | jq -e '.uuid == "" and .inventory.system.uuid == ""' >/dev/null ||
        fail "an all-FF UUID was stored: $(ctl machine show m-52540000000b --json | jq -c '[.uuid, .inventory.system]')"
NONCE=$(boot 52:54:00:00:00:0c 8c1b5a2e-4c1e-4d5a-9f00-00000000000c)
expect 200 POST /v1/agent/register "$(register "$NONCE" 52:54:00:00:00:0c 00000000-0000-0000-0000-000000000000 QEMU S0)"
[ "$(ctl machine show m-52540000000c --json | jq -r .uuid)" = 8c1b5a2e-4c1e-4d5a-9f00-00000000000c ] ||
        fail "an agent reporting an all-zero UUID changed the machine's"
ctl machine forget m-52540000000b >/dev/null && ctl machine forget m-52540000000c >/dev/null || fail "forget failed"

log "exit codes and the admin API over HTTP"
set +e
ctl machine approve no-such-machine 2>/dev/null; [ $? = 1 ] || fail "unknown machine: exit code not 1"
ctl machine frobnicate x 2>/dev/null; [ $? = 2 ] || fail "unknown subcommand: exit code not 2"
"$METALD" status --socket "$T/nowhere.sock" 2>/dev/null; [ $? = 1 ] || fail "no daemon: exit code not 1"
"$METALD" serve --bogus 2>/dev/null; [ $? = 2 ] || fail "serve --bogus: exit code not 2"
"$METALD" config check --config "$T/nowhere.yaml" 2>/dev/null; [ $? = 2 ] || fail "missing config: exit code not 2"
set -e
[ "$(api GET /v1/admin/status)" = 401 ] || fail "admin API without a token was not 401"
[ "$(api GET /v1/admin/status '' "$(cat "$T/admin.token")")" = 200 ] || fail "admin API with the token failed"
jq -e '.counts.failed == 1' "$T/body" >/dev/null || fail "admin status over HTTP: $(cat "$T/body")"
metald_stop
log "ok"
