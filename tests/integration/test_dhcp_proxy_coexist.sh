#!/bin/bash
# proxyDHCP on the host that runs the site's DHCP server: dnsmasq (addresses
# only, --bind-interfaces, as sites run it beside other DHCP daemons) and
# metald in proxy mode in one namespace, on one address and one port 67, in
# both orders of start. A plain client gets its address from dnsmasq, metald
# ignores it, and its unicast renewal still reaches dnsmasq; the boot-server
# port stays metald's; QEMU machines take their address from dnsmasq and
# their boot from metald. A dnsmasq that does not share the port, and a full
# server beside dnsmasq, fail with one line that names dnsmasq and the fix.
. "$(dirname "$0")/lib.sh"
need dnsmasq busybox ss python3 jq
lab_setup
CLI=$(ns_add cli)
ip link add "c-$NS_ID" netns "$LAB" type veth peer name eth0 netns "$CLI"
ip -n "$LAB" link set "c-$NS_ID" master br0
ip -n "$LAB" link set "c-$NS_ID" up
ip -n "$CLI" link set eth0 up
testboot_root "$T/root"
LOG_LEVEL=debug lab_config proxy
DNSMASQ_PID=""

# dnsmasq_start [FLAGS...]: the site's DHCP server on br0 of the lab namespace, addresses only.
dnsmasq_start() {
        # ip netns exec, not the in_ns function: $! must be dnsmasq itself, not a subshell
        ip netns exec "$LAB" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=br0 "$@" \
                --dhcp-range=10.77.0.160,10.77.0.190,255.255.255.0,10m --dhcp-leasefile="$T/dnsmasq.leases" \
                --log-dhcp >>"$T/dnsmasq.log" 2>&1 &
        DNSMASQ_PID=$!
        PIDS+=("$DNSMASQ_PID")
        wait_until 10 holds_67 dnsmasq || fail "dnsmasq did not bind port 67: $(tail -3 "$T/dnsmasq.log")"
}
dnsmasq_stop() {
        kill "$DNSMASQ_PID"
        wait "$DNSMASQ_PID" 2>/dev/null || true
        DNSMASQ_PID=""
}
holds_67() { in_ns "$LAB" ss -Hulpn 'sport = :67' 2>/dev/null | grep -q "\"$1\",pid="; }

# metald_refused CONFIG: metald must exit 1 at start-up; its output is left in $T/refused.log.
metald_refused() {
        local rc=0
        in_ns "$LAB" timeout 30 "$METALD" serve --config "$1" >"$T/refused.log" 2>&1 || rc=$?
        [ $rc -eq 1 ] || fail "metald exited with $rc, expected a refusal: $(tail -5 "$T/refused.log")"
        [ "$(grep -c 'dhcp: cannot bind' "$T/refused.log")" = 1 ] || fail "not one error line: $(cat "$T/refused.log")"
}
# refused_with TEXT: the error line of the refusal says TEXT.
refused_with() { grep -qF "$1" "$T/refused.log" || fail "error line: $(grep 'dhcp: cannot bind' "$T/refused.log")"; }

# plain_client MAC: busybox udhcpc (no PXE class) takes a lease from dnsmasq and
# renews it by unicast; metald sees only the broadcasts, and answers none of them.
plain_client() {
        local mac=$1 ev="$T/udhcpc.$1.events" out="$T/udhcpc.$1.log" pid ip
        ip -n "$CLI" addr flush dev eth0
        ip -n "$CLI" link set eth0 address "$mac"
        cat >"$T/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
esac
echo "$1 $ip" >>"$EVENTS"
SCRIPT
        chmod +x "$T/udhcpc.sh"
        : >"$ev"
        # dnsmasq pings an address before it offers it, so the first DISCOVERs go unanswered;
        # $! is udhcpc itself (no timeout(1), no subshell): it gets the signals, and is killed below or on exit
        EVENTS=$ev ip netns exec "$CLI" busybox udhcpc -i eth0 -f -n -t 10 -T 2 -s "$T/udhcpc.sh" >"$out" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        wait_until 40 grep -q '^bound ' "$ev" || fail "udhcpc got no lease: $(tail -5 "$out")"
        ip=$(awk '/^bound / { print $2; exit }' "$ev")
        case "$ip" in 10.77.0.1[6-9][0-9]) ;; *) fail "the lease $ip is not from dnsmasq's range" ;; esac
        kill -USR1 "$pid"
        wait_until 20 grep -q "^renew $ip" "$ev" || fail "udhcpc could not renew: $(tail -5 "$out")"
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
        [ "$(grep -c "DHCPACK(br0) $ip $mac" "$T/dnsmasq.log")" -ge 2 ] ||
                fail "dnsmasq did not acknowledge both the lease and the renewal of $mac"
        grep -q "dhcp: DISCOVER $mac: not a PXE client" "$T/metald.log" ||
                fail "metald did not see the DISCOVER of $mac"
        grep -qE "dhcp: [A-Z]+ $mac -> " "$T/metald.log" && fail "metald answered the plain client $mac"
        grep -q "sending renew to server 10.77.0.1" "$out" || fail "udhcpc sent no unicast renewal: $(cat "$out")"
        wait_until 5 renewal_to_dnsmasq_only "$mac" "$ip" ||
                fail "the unicast renewal of $mac did not reach dnsmasq alone:" \
                        "$(grep -h "$mac" "$T/metald.log" "$T/dnsmasq.log")"
        # the boot-server port is metald's, also with dnsmasq beside it
        local r
        r=$(in_ns "$CLI" python3 "$TOP/tests/integration/dhcp_probe.py" pxe eth0 10.77.0.1 --arch 7 --port 4011 \
                --type request --ciaddr "$ip") || fail "no answer on port 4011"
        [ "$(jq -r '.options["53"]' <<<"$r")" = 05 ] || fail "the port 4011 answer is not an ACK: $r"
        [ "$(jq -r .file <<<"$r")" = ipxe.efi ] || fail "wrong boot file on port 4011: $r"
        ip -n "$CLI" addr flush dev eth0
}

# renewal_to_dnsmasq_only MAC IP: every REQUEST metald saw from MAC was a broadcast that dnsmasq saw
# too, and dnsmasq saw exactly one more, the unicast renewal (a fallback to broadcast, when the
# unicast answer is slow, adds one to both counts)
renewal_to_dnsmasq_only() {
        local d m
        d=$(grep -c "DHCPREQUEST(br0) $2 $1" "$T/dnsmasq.log")
        m=$(grep -c "dhcp: REQUEST $1: not a PXE client" "$T/metald.log")
        [ "$d" = $((m + 1)) ]
}

# boot MAC: a BIOS machine takes its address from dnsmasq and its boot from metald.
boot() {
        local name=$1 mac=$2
        qemu_boot "$name" bios "$mac"
        wait_marker "$name" 180
        grep -q "DHCPACK(br0) 10.77.0.1[6-9][0-9] $mac" "$T/dnsmasq.log" ||
                fail "the address of $name did not come from dnsmasq: $(grep DHCPACK "$T/dnsmasq.log")"
        grep -q "DISCOVER $mac -> OFFER" "$T/metald.log" || fail "metald sent $name no proxy offer"
        grep -q "GET /boot.ipxe?mac=${mac//:/-}" "$T/metald.log" || fail "$name asked for no boot script"
}

log "dnsmasq first, then metald"
dnsmasq_start --bind-interfaces
metald_start "$LAB"
holds_67 metald || fail "metald does not hold port 67 beside dnsmasq"
grep -q "dhcp: proxy mode, listening on ports 67 (broadcasts only, shareable) and 4011" "$T/metald.log" ||
        fail "no start-up line for the shared port"
plain_client 52:54:00:c1:06:10
boot coexist1 52:54:00:c1:06:01
metald_stop

log "a full server beside dnsmasq refuses to start"
sed 's/^  mode: proxy$/  mode: full/' "$T/metald.yaml" >"$T/full.yaml"
grep -q '^  mode: full$' "$T/full.yaml" || fail "no full-mode configuration"
metald_refused "$T/full.yaml"
refused_with "cannot bind 0.0.0.0:67 on br0: Address already in use: dnsmasq (pid $DNSMASQ_PID) is a DHCP server"
refused_with "here already; stop it, or set dhcp.mode: proxy to boot machines beside it"
dnsmasq_stop

log "metald first, then dnsmasq"
metald_start "$LAB"
dnsmasq_start --bind-interfaces
holds_67 metald || fail "metald lost port 67"
plain_client 52:54:00:c1:06:11
boot coexist2 52:54:00:c1:06:02
grep -qE "dhcp: .* -> ACK 10\.77" "$T/metald.log" && fail "metald handed out an address in proxy mode"
metald_stop
dnsmasq_stop

log "a dnsmasq that does not share the port: one line says why and what to do"
dnsmasq_start
metald_refused "$T/metald.yaml"
refused_with "cannot bind 255.255.255.255:67 on br0: Address already in use: dnsmasq (pid $DNSMASQ_PID) holds"
refused_with "the port and does not share it; run dnsmasq with --bind-interfaces or --bind-dynamic"
dnsmasq_stop
metald_check_log
log "ok"
