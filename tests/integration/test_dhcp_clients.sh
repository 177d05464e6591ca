#!/bin/bash
# Real DHCP clients against metald in full mode: dhclient gets a pool lease,
# renews and releases it; a reserved MAC gets its address and host name;
# busybox udhcpc gets a lease too; leases survive a restart.
. "$(dirname "$0")/lib.sh"
need dhclient busybox

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/24 "$CLI" vc0 -

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: debug
dhcp:
  lease_time: 30s
  subnets:
    - network: 10.77.0.0/24
      ranges: [10.77.0.100-10.77.0.120]
      router: 10.77.0.1
      dns: [10.77.0.1]
      domain: lab.test
      reservations:
        - { mac: "02:00:00:00:00:42", address: 10.77.0.42, hostname: reserved-node }
tftp: { enabled: false }
http: { enabled: false }
CFG
metald_start "$SRV"

# dhclient gives its script a clean environment; -e passes the events file
EV=(-e "DHCLIENT_EVENTS=$T/events")
dhc() { in_ns "$CLI" timeout 30 dhclient "${EV[@]}" -1 -v -pf "$T/dhc.pid" -lf "$T/dhc.leases" \
        -sf "$TOP/tests/integration/dhclient-script" "$@" 2>>"$T/dhclient.log"; }
addr_of() { in_ns "$CLI" ip -4 -o addr show dev "$1" | awk '{print $4}' | cut -d/ -f1; }

# pool lease
dhc vc0 || fail "dhclient got no lease"
A=$(addr_of vc0)
case "$A" in 10.77.0.1[01][0-9]|10.77.0.120) ;; *) fail "address $A is not from the pool";; esac
grep -q 'option domain-name "lab.test"' "$T/dhc.leases" || fail "domain option missing"
grep -q 'option routers 10.77.0.1' "$T/dhc.leases" || fail "router option missing"
log "bound $A"

# renew: the running client unicasts a REQUEST at T1 (15 s) and keeps its address
in_ns "$CLI" dhclient "${EV[@]}" -v -pf "$T/dhc2.pid" -lf "$T/dhc.leases" -sf "$TOP/tests/integration/dhclient-script" vc0 \
        2>>"$T/dhclient.log"
wait_until 40 grep -q "^RENEW $A" "$T/events" || fail "no renewal"
log "renewed $A"
kill "$(cat "$T/dhc2.pid")"

# release: the address returns to the server, which records it
in_ns "$CLI" timeout 10 dhclient "${EV[@]}" -r -pf "$T/dhc.pid" -lf "$T/dhc.leases" \
        -sf "$TOP/tests/integration/dhclient-script" vc0 2>>"$T/dhclient.log"
wait_until 5 grep -q "RELEASE .*$A: released" "$T/metald.log" || fail "server did not record the release"

# reservation by MAC, with the host name option
in_ns "$CLI" ip link set vc0 address 02:00:00:00:00:42
dhc vc0 || fail "dhclient (reserved) got no lease"
[ "$(addr_of vc0)" = 10.77.0.42 ] || fail "reserved MAC got $(addr_of vc0)"
grep -q "BOUND 10.77.0.42 reserved-node" "$T/events" || fail "host name not delivered"

# leases survive a restart: the same client is offered the same address
metald_stop
metald_start "$SRV"
grep -q "1 bound leases restored" "$T/metald.log" || fail "lease not restored"
in_ns "$CLI" ip addr flush dev vc0
dhc vc0 || fail "no lease after restart"
[ "$(addr_of vc0)" = 10.77.0.42 ] || fail "address changed after restart"

# busybox udhcpc, another client implementation
in_ns "$CLI" ip link set vc0 address 02:00:00:00:00:77
in_ns "$CLI" ip addr flush dev vc0
in_ns "$CLI" timeout 20 busybox udhcpc -i vc0 -n -q -f -t 5 -T 1 -s /bin/true >"$T/udhcpc.log" 2>&1 ||
        fail "udhcpc got no lease: $(cat "$T/udhcpc.log")"
grep -q "lease of 10.77.0.1[01][0-9] obtained" "$T/udhcpc.log" || fail "udhcpc: $(cat "$T/udhcpc.log")"
metald_stop
log "ok"
