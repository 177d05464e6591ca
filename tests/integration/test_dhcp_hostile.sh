#!/bin/bash
# Malformed datagrams on both DHCP ports: every one is dropped with a
# rate-limited warning, nothing crashes (run under ASan by `make asan`), and
# a real client is served right after.
. "$(dirname "$0")/lib.sh"
need dhclient python3

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/24 "$CLI" vc0 10.77.0.9/24

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
dhcp:
  subnets:
    - network: 10.77.0.0/24
      ranges: [10.77.0.100-10.77.0.120]
tftp: { enabled: false }
http: { enabled: false }
CFG
metald_start "$SRV"
for round in 1 2 3; do
        in_ns "$CLI" python3 "$TOP/tests/integration/dhcp_probe.py" hostile 10.77.0.1 >>"$T/probe.log"
done
sleep 0.5
kill -0 "$METALD_PID" || fail "metald died on hostile input"
grep -q "malformed datagram" "$T/metald.log" || fail "malformed datagrams were not reported"
# rate limiting: three rounds of ~46 bad datagrams from one peer, at most a burst logged
W=$(grep -c "malformed datagram" "$T/metald.log")
[ "$W" -le 12 ] || fail "warnings are not rate-limited ($W lines)"
in_ns "$CLI" ip addr flush dev vc0
in_ns "$CLI" timeout 30 dhclient -1 -v -pf "$T/dhc.pid" -lf "$T/dhc.leases" \
        -sf "$TOP/tests/integration/dhclient-script" vc0 2>"$T/dhclient.log" || fail "no lease after hostile input"
metald_stop
log "ok: $W warnings logged for $(cat "$T/probe.log" | awk '{s+=$2} END {print s}') datagrams"
