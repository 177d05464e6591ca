#!/bin/bash
# proxyDHCP: the site's DHCP server (dnsmasq, addresses only, no boot options)
# and metald in proxy mode share the lab network. The machine takes its address
# from dnsmasq and its boot from metald, and boots.
. "$(dirname "$0")/lib.sh"
need dnsmasq
lab_setup
SITE=$(lab_site_ns site 10.77.0.2/24)
testboot_root "$T/root"
lab_config proxy
in_ns "$SITE" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=eth0 --bind-interfaces \
        --dhcp-range=10.77.0.160,10.77.0.190,255.255.255.0,10m --dhcp-leasefile="$T/dnsmasq.leases" \
        --log-dhcp >"$T/dnsmasq.log" 2>&1 &
PIDS+=($!)
metald_start "$LAB"

qemu_boot proxy1 bios 52:54:00:c1:05:01
wait_marker proxy1 180
grep -q "DHCPACK(eth0) 10.77.0.1[6-9][0-9] 52:54:00:c1:05:01" "$T/dnsmasq.log" ||
        fail "the address did not come from the site DHCP server: $(grep DHCPACK "$T/dnsmasq.log")"
grep -q "DISCOVER 52:54:00:c1:05:01 -> OFFER" "$T/metald.log" || fail "metald sent no proxy offer"
grep -qE "dhcp: .* -> ACK 10\.77" "$T/metald.log" && fail "metald handed out an address in proxy mode"
grep -q "GET /boot.ipxe?mac=52-54-00-c1-05-01" "$T/metald.log" || fail "no boot script request with identity"
metald_stop
log "ok"
