#!/bin/bash
# perfdhcp completes more than 10,000 DORA exchanges with no address handed
# to two clients; every ACKed lease survives kill -9; new clients after the
# restart never get an address that is still leased.
. "$(dirname "$0")/lib.sh"
need perfdhcp sqlite3

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/16 "$CLI" vc0 10.77.0.2/16

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: warning
dhcp:
  lease_time: 1h
  subnets:
    - network: 10.77.0.0/16
      ranges: [10.77.1.0-10.77.255.254]
tftp: { enabled: false }
http: { enabled: false }
CFG
metald_start "$SRV"

# perfdhcp acts as a relay from 10.77.0.2. Its client MACs count from a base
# MAC, so each run is a set of distinct clients (any "non unique address" is
# the server's fault) and a different base gives a second, disjoint set.
perf() {
        in_ns "$CLI" timeout 120 perfdhcp -4 -g single -l vc0 -r 2000 -R 4294967295 -b "mac=$3" -n "$2" -u \
                10.77.0.1 >"$T/perfdhcp-$1.log" 2>&1 || true
}
acks() { awk '/REQUEST-ACK/{f=1} f && /received packets/{print $3; exit}' "$T/perfdhcp-$1.log"; }
nonunique() { grep "non unique addresses" "$T/perfdhcp-$1.log" | awk '{s += $4} END {print s + 0}'; }

perf 11 11000 00:0c:01:00:00:00
ACKS=$(acks 11)
log "perfdhcp: $ACKS ACKs; $(grep -m1 '^Rate' "$T/perfdhcp-11.log")"
[ "${ACKS:-0}" -ge 10000 ] || fail "only ${ACKS:-0} exchanges completed: $(tail -20 "$T/perfdhcp-11.log")"
[ "$(nonunique 11)" = 0 ] || fail "perfdhcp saw non-unique addresses"

metald_kill9
ROWS=$(sqlite3 "$T/state/metald.db" "select count(*) from leases where state = 1")
[ "$ROWS" -ge "$ACKS" ] || fail "only $ROWS of $ACKS acknowledged leases survived kill -9"

metald_start "$SRV"
perf 12 2000 00:0c:02:00:00:00
[ "$(acks 12)" -ge 1900 ] || fail "second run completed only $(acks 12)"
[ "$(nonunique 12)" = 0 ] || fail "perfdhcp saw non-unique addresses after restart"
# no lease of the first run was taken over by a client of the second
AFTER=$(sqlite3 "$T/state/metald.db" "select count(*) from leases where state = 1")
[ "$AFTER" -ge $((ROWS + $(acks 12))) ] || fail "leases were reassigned: $AFTER < $ROWS + $(acks 12)"
metald_stop
log "ok: $ACKS + $(acks 12) leases, all distinct and durable"
