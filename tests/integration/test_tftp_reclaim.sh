#!/bin/bash
# TFTP slots held by abandoned transfers, over a veth pair: a client that
# started max_per_client transfers and left them (a reset mid-download) gets
# its next file from tftp-hpa at once, the most stale transfer ended with an
# ERROR on its own port; transfers that are fresh, not stalled, still make the
# next request busy. The same for a full server (max_transfers) whose slots
# are held by another client's stalled transfers.
. "$(dirname "$0")/lib.sh"
need tftp python3 curl cmp

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" veth-srv 10.99.0.1/24 "$CLI" veth-cli 10.99.0.2/24
ip -n "$CLI" addr add 10.99.0.3/24 dev veth-cli      # a second client address; tftp-hpa uses 10.99.0.2
HOST=10.99.0.1
ROOT=$T/root
OUT=$T/out
mkdir -p "$ROOT" "$OUT"
head -c $((1 << 20)) /dev/urandom >"$ROOT/file"

# write_config FILE EXTRA: 100 ms first timeout, so that a transfer stalls (two
# timeouts without progress) after 300 ms; with 10 retries it gives up only
# after about 53 s, far beyond the test.
write_config() {
        cat >"$1" <<EOF
server: { interface: veth-srv, address: $HOST }
state_dir: $T/state
control: { socket: $T/control.sock }
dhcp: { enabled: false }
http: { listen_address: $HOST, port: 8080, root: $ROOT }
tftp: { root: $ROOT, port: 69, timeout: 100ms, retries: 10$2 }
EOF
}
write_config "$T/client.yaml" ""
write_config "$T/full.yaml" ", max_transfers: 4"

# --stall 2: the retransmissions after which the server counts a transfer as stalled (TFTP_STALL_TIMEOUTS)
ABANDON=("$TOP/tests/integration/tftp_abandon.py" "$HOST" file)
FETCH=(timeout 20 tftp -m binary "$HOST" -c get file)     # and the local name
metric() { in_ns "$CLI" curl -sS --max-time 10 "http://$HOST:8080/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# errors_are FILE ERRORS: the ERRORs the abandoned transfers got, from the helper's report
# (tftp-hpa exits 0 even after an ERROR: its output, in FILE.err, tells)
errors_are() {
        local got
        got=$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["errors"], sort_keys=True))' "$1")
        [ "$got" = "$2" ] || fail "$1: ERRORs $got, want $2 ($(cat "$1.err"))"
}
reclaims() { grep -c 'ended stalled transfer' "$T/metald.log" || true; }

metald_start "$SRV" "$T/client.yaml"

log "8 fresh transfers (client timeout 5 s, tsize probes left open): the 9th is busy"
in_ns "$CLI" timeout 60 python3 "${ABANDON[@]}" 8 --option tsize=0 --option timeout=5 -- "${FETCH[@]}" "$OUT/busy" \
        >"$T/busy.json" 2>"$T/busy.json.err" || fail "helper failed: $(cat "$T/busy.json.err")"
errors_are "$T/busy.json" '{}'
grep -q "Error code 0: server busy" "$T/busy.json.err" || fail "no busy refusal: $(cat "$T/busy.json.err")"
[ "$(reclaims)" = 0 ] || fail "a fresh transfer was reclaimed"

log "8 abandoned transfers, stalled: tftp-hpa from the same address at once"
in_ns "$CLI" timeout 60 python3 "${ABANDON[@]}" 8 --stall 2 -- "${FETCH[@]}" "$OUT/after-stall" \
        >"$T/stall.json" 2>"$T/stall.json.err" || fail "helper failed: $(cat "$T/stall.json.err")"
errors_are "$T/stall.json" '{"0": "transfer stalled"}'
cmp "$ROOT/file" "$OUT/after-stall" || fail "copy after the reclaim differs"
grep -q 'ended stalled transfer of "file" to 10.99.0.2:[0-9]* (no progress for [0-9]* ms, [0-9]* timeouts) to make room for a request from 10.99.0.2:' \
        "$T/metald.log" || fail "no log line for the reclaim"
[ "$(reclaims)" = 1 ] || fail "$(reclaims) reclaims logged, want 1"
[ "$(metric metald_tftp_transfers_reclaimed_total)" = 1 ] || fail "reclaimed_total: $(metric metald_tftp_transfers_reclaimed_total)"
[ "$(metric metald_tftp_active_transfers)" = 0 ] || fail "transfers left: $(metric metald_tftp_active_transfers)"
metald_stop

log "full server (max_transfers 4): another client's fresh transfers make it busy, stalled ones make room"
metald_start "$SRV" "$T/full.yaml"
in_ns "$CLI" timeout 60 python3 "${ABANDON[@]}" 4 --bind 10.99.0.3 --option timeout=5 -- "${FETCH[@]}" "$OUT/busy-full" \
        >"$T/full-busy.json" 2>"$T/full-busy.json.err" || fail "helper failed: $(cat "$T/full-busy.json.err")"
errors_are "$T/full-busy.json" '{}'
grep -q "Error code 0: server busy" "$T/full-busy.json.err" || fail "no busy refusal: $(cat "$T/full-busy.json.err")"
in_ns "$CLI" timeout 60 python3 "${ABANDON[@]}" 4 --bind 10.99.0.3 --stall 2 -- "${FETCH[@]}" "$OUT/after-full" \
        >"$T/full.json" 2>"$T/full.json.err" || fail "helper failed: $(cat "$T/full.json.err")"
errors_are "$T/full.json" '{"0": "transfer stalled"}'
cmp "$ROOT/file" "$OUT/after-full" || fail "copy on the full server differs"
grep -q 'ended stalled transfer of "file" to 10.99.0.3:[0-9]* .* to make room for a request from 10.99.0.2:' \
        "$T/metald.log" || fail "no log line for the reclaim on the full server"
metald_stop
log "ok"
