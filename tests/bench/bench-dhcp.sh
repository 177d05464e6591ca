#!/bin/bash
# DHCP benchmark: completed DORA exchanges per second, measured with perfdhcp
# against metald, kea-dhcp4-server (memfile, persisted) and dnsmasq, each
# started here in its own namespace with the same /13 pool. For every server:
# a ladder of offered rates finds its peak goodput; then it is offered 4x that
# peak. Each point is the median of RUNS runs of SECS seconds, each on a fresh
# lease database. Prints a table and ratios; asserts nothing.
. "$(dirname "$0")/../integration/lib.sh"
need perfdhcp kea-dhcp4 dnsmasq

RUNS=${RUNS:-3}
SECS=${SECS:-5}
LADDER=${LADDER:-"1000 2000 4000 8000 12000 16000 24000 32000"}
SRV=$(ns_add srv)
CLI=$(ns_add cli)
# A /13 pool (458,750 addresses): 4x the peak for SECS seconds must not exhaust
# it, or the figure measures the pool size instead of the server.
veth "$SRV" vs0 10.64.0.1/13 "$CLI" vc0 10.64.0.2/13

# perfdhcp drops replies when its own socket buffer overflows; a larger
# default buffer (for every server alike) measures the server, not the client.
OLD_RMEM=$(sysctl -n net.core.rmem_default)
sysctl -qw net.core.rmem_default=8388608
EXIT_HOOKS+=("sysctl -qw net.core.rmem_default=$OLD_RMEM")

SPID=""
start_metald() {
        cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.64.0.1 }
state_dir: $T/run/metald
control: { socket: $T/control.sock }
log_level: warning
dhcp:
  lease_time: 1h
  subnets: [{ network: 10.64.0.0/13, ranges: [10.65.0.0-10.71.255.254] }]
tftp: { enabled: false }
http: { enabled: false }
CFG
        metald_start "$SRV"
        SPID=$METALD_PID
}
start_kea() {
        cat >"$T/kea.json" <<CFG
{ "Dhcp4": {
    "interfaces-config": { "interfaces": ["vs0"], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "lfc-interval": 0,
                        "name": "$T/run/kea-leases4.csv" },
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "10.64.0.0/13", "pools": [ { "pool": "10.65.0.0 - 10.71.255.254" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$T/kea.log" } ] } ]
} }
CFG
        KEA_PIDFILE_DIR=$T/run KEA_LOCKFILE_DIR=$T/run ip netns exec "$SRV" kea-dhcp4 -c "$T/kea.json" >>"$T/kea.out" 2>&1 &
        SPID=$!
        wait_until 10 bash -c "ip netns exec $SRV ss -Hlun | grep -q ':67 '" || fail "kea did not start"
}
# --no-ping: dnsmasq otherwise pings each address and holds its OFFER for
# about 3 s, past perfdhcp's 1 s drop time; metald does no ping check either.
start_dnsmasq() {
        ip netns exec "$SRV" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=vs0 --bind-interfaces \
                --no-ping \
                --dhcp-range=10.65.0.0,10.71.255.254,255.248.0.0,1h --dhcp-lease-max=1000000 \
                --dhcp-leasefile="$T/run/dnsmasq.leases" --pid-file="$T/run/dnsmasq.pid" --quiet-dhcp \
                >>"$T/dnsmasq.log" 2>&1 &
        SPID=$!
        wait_until 10 bash -c "ip netns exec $SRV ss -Hlun | grep -q ':67 '" || fail "dnsmasq did not start"
}
stop_server() {
        if [ "$1" = metald ]; then metald_stop; else kill "$SPID"; wait "$SPID" 2>/dev/null || true; fi
        SPID=""
}

BASE=0
# one_run SERVER RATE: prints completed exchanges per second
one_run() {
        rm -rf "$T/run"; mkdir -p "$T/run"
        "start_$1"
        BASE=$((BASE + 1))
        local out
        out=$(in_ns "$CLI" timeout $((SECS + 30)) perfdhcp -4 -g single -l vc0 -r "$2" -R 4294967295 \
                -b "mac=00:0c:$(printf '%02x' $((BASE % 256))):00:00:00" -p "$SECS" 10.64.0.1 2>&1 || true)
        stop_server "$1"
        awk '/^Rate:/{print int($2); exit}' <<<"$out"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
measure() { for _ in $(seq "$RUNS"); do one_run "$1" "$2"; done | median; }

declare -A PEAK OVER
for s in metald kea dnsmasq; do
        best=0
        for r in $LADDER; do
                g=$(measure "$s" "$r")
                printf '%-8s offered %6d/s  completed %6d/s\n' "$s" "$r" "$g"
                [ "$g" -gt "$best" ] && best=$g
                # saturated: well below what was offered
                [ "$g" -lt $((r * 8 / 10)) ] && break
        done
        PEAK[$s]=$best
        OVER[$s]=$(measure "$s" $((best * 4)))
        printf '%-8s peak %d/s; offered 4x peak (%d/s): completed %d/s (%d%% of peak)\n' "$s" "$best" \
                $((best * 4)) "${OVER[$s]}" $((100 * ${OVER[$s]} / (best > 0 ? best : 1)))
done

echo
echo "| server | peak DORA/s | at 4x its peak | overload/peak | metald/server (peak) |"
echo "|---|---|---|---|---|"
for s in metald kea dnsmasq; do
        p=${PEAK[$s]}; [ "$p" -gt 0 ] || p=1
        printf '| %s | %d | %d | %.2f | %.2f |\n' "$s" "${PEAK[$s]}" "${OVER[$s]}" \
                "$(echo "${OVER[$s]} / $p" | bc -l)" "$(echo "${PEAK[metald]} / $p" | bc -l)"
done
