#!/bin/bash
# A client behind ISC dhcrelay (in a second namespace) gets an address from
# the relay's subnet; the relay adds option 82 and metald must echo it, or
# dhcrelay discards the reply.
. "$(dirname "$0")/lib.sh"
need dhcrelay dhclient

SRV=$(ns_add srv)
RLY=$(ns_add rly)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/24 "$RLY" rs0 10.77.0.2/24
veth "$RLY" rc0 10.88.0.1/24 "$CLI" vc0 -
in_ns "$SRV" ip route add 10.88.0.0/24 via 10.77.0.2

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: debug
dhcp:
  subnets:
    - network: 10.77.0.0/24
      ranges: [10.77.0.100-10.77.0.120]
    - network: 10.88.0.0/24
      ranges: [10.88.0.50-10.88.0.60]
      router: 10.88.0.1
tftp: { enabled: false }
http: { enabled: false }
CFG
metald_start "$SRV"

# -a adds the relay agent option; -m replace keeps it ours
bg "$RLY" dhcrelay -d -4 -a -m replace -iu rs0 -id rc0 10.77.0.1 >"$T/dhcrelay.log" 2>&1
sleep 1
in_ns "$CLI" timeout 30 dhclient -1 -v -pf "$T/dhc.pid" -lf "$T/dhc.leases" \
        -sf "$TOP/tests/integration/dhclient-script" vc0 2>"$T/dhclient.log" ||
        fail "no lease through the relay: $(tail -5 "$T/dhclient.log")"
A=$(in_ns "$CLI" ip -4 -o addr show dev vc0 | awk '{print $4}' | cut -d/ -f1)
case "$A" in 10.88.0.5[0-9]|10.88.0.60) ;; *) fail "relayed client got $A, not an address of 10.88.0.0/24";; esac
grep -q 'option routers 10.88.0.1' "$T/dhc.leases" || fail "the relay subnet's router was not sent"
grep -q "Forwarded BOOTREPLY for" "$T/dhcrelay.log" || fail "dhcrelay did not forward our reply"
! grep -q "dropped" "$T/dhcrelay.log" || fail "dhcrelay dropped a reply: $(grep dropped "$T/dhcrelay.log")"
log "relayed client bound $A"

metald_stop

# Replies to a relay follow the routing table. Served on no particular
# interface (server.address only), metald cannot send them without a route
# back to the relay's subnet, and the log says so and what to do. (Bound to an
# interface, the kernel takes giaddr for an address on that link instead.)
log "no route back to the relay's subnet"
sed '/^server:/c server: { address: 10.77.0.1 }' "$T/metald.yaml" >"$T/unbound.yaml"
in_ns "$SRV" ip route del 10.88.0.0/24 via 10.77.0.2
metald_start "$SRV" "$T/unbound.yaml"
bg "$CLI" dhclient -1 -d -v -pf "$T/dhc2.pid" -lf "$T/dhc2.leases" \
        -sf "$TOP/tests/integration/dhclient-script" vc0 >"$T/dhclient2.log" 2>&1
MAC=$(in_ns "$CLI" cat /sys/class/net/vc0/address)
LINE="cannot send OFFER for $MAC to relay 10.88.0.1: Network is unreachable (ENETUNREACH); add a route on this host to the relay's subnet"
wait_until 20 grep -qF "$LINE" "$T/metald.log" || fail "no clear log line for the relay metald has no route to"
! grep -q "^DHCPACK" "$T/dhclient2.log" || fail "a lease without a route back to the relay"
log "with the route added, the same client gets its lease"
in_ns "$SRV" ip route add 10.88.0.0/24 via 10.77.0.2
wait_until 45 grep -q "^DHCPACK" "$T/dhclient2.log" || fail "no lease once the route is back: $(tail -3 "$T/dhclient2.log")"
metald_stop
