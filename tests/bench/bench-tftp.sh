#!/bin/bash
# TFTP throughput over a veth pair: metald against tftpd-hpa and dnsmasq, one
# 64 MiB file at blksize 1468 fetched by atftp, in RUNS rounds that take turns.
# Prints the median MB/s per server and metald's ratio to tftpd-hpa. It never
# asserts timings: the numbers depend on the machine.
#
#   METALD_BUILD=build tests/bench/bench-tftp.sh
. "$(dirname "$0")/../integration/lib.sh"
need atftp in.tftpd dnsmasq ss cmp

RUNS=${RUNS:-5}
SIZE=$((64 << 20))
HOST=10.99.0.1
SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" veth-srv $HOST/24 "$CLI" veth-cli 10.99.0.2/24
ROOT=$T/root
mkdir -p "$ROOT"
# tftpd-hpa and dnsmasq drop privileges: the root must be reachable by anyone
chmod 755 "$T" "$ROOT"
head -c $SIZE /dev/urandom >"$ROOT/big"
chmod 644 "$ROOT/big"

cat >"$T/metald.yaml" <<EOF
server: { interface: veth-srv, address: $HOST }
state_dir: $T/state
control: { socket: $T/control.sock }
dhcp: { enabled: false }
http: { enabled: false }
tftp: { root: $ROOT, port: 69 }
EOF

port_bound() { in_ns "$SRV" ss -Hlun "sport = :69" | grep -q .; }

peer_start() {
        bg "$SRV" "$@" >>"$T/peer.log" 2>&1
        wait_until 10 port_bound || fail "$1 did not bind port 69"
}

peer_stop() {
        local pid=${PIDS[-1]}
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
        wait_until 10 sh -c "! ip netns exec $SRV ss -Hlun 'sport = :69' | grep -q ." || fail "port 69 still bound"
}

# fetch WINDOW: one download; prints its wall time in seconds.
fetch() {
        local window=$1 opts=(--option "blksize 1468") t0 t1
        [ "$window" -gt 1 ] && opts+=(--option "windowsize $window")
        rm -f "$T/out"
        t0=$(date +%s.%N)
        in_ns "$CLI" timeout 60 atftp "${opts[@]}" -g -r big -l "$T/out" $HOST >>"$T/atftp.log" 2>&1 ||
                fail "atftp failed (window $window)"
        t1=$(date +%s.%N)
        cmp -s "$ROOT/big" "$T/out" || fail "downloaded copy differs (window $window)"
        echo "$t1 - $t0" | bc -l
}

# One round fetches once from every server and window, so that drift in the
# machine (other load, CPU steal on a VM) hits all of them alike.
declare -A TIMES
CONFIGS=("metald 1" "metald 16" "tftpd-hpa 1" "dnsmasq 1")
take() { TIMES[$1,$2]+="$(fetch "$2") "; }
for round in $(seq "$RUNS"); do
        metald_start "$SRV" "$T/metald.yaml"
        take metald 1
        take metald 16
        metald_stop
        peer_start in.tftpd -L -u root -s "$ROOT" -a "$HOST:69"
        take tftpd-hpa 1
        peer_stop
        peer_start dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$ROOT" \
                --listen-address=$HOST --bind-interfaces --user=root --pid-file="$T/dnsmasq.pid"
        take dnsmasq 1
        peer_stop
        log "round $round of $RUNS done"
done

RESULTS=()
for c in "${CONFIGS[@]}"; do
        read -r name window <<<"$c"
        read -ra times <<<"${TIMES[$name,$window]}"
        median=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")
        mbps=$(echo "$SIZE / $median / 1000000" | bc -l)
        RESULTS+=("$name|$window|$(printf '%.2f ' "${times[@]}")|$(printf '%.1f' "$mbps")")
done

hpa=$(printf '%s\n' "${RESULTS[@]}" | awk -F'|' '$1 == "tftpd-hpa" { print $4 }')
echo
echo "TFTP, 64 MiB, blksize 1468, atftp client on a veth pair, median of $RUNS alternating rounds"
printf '%-10s %-10s %-36s %10s %14s\n' server windowsize "seconds" "MB/s" "vs tftpd-hpa"
for r in "${RESULTS[@]}"; do
        IFS='|' read -r name window times mbps <<<"$r"
        printf '%-10s %-10s %-36s %10s %13.2fx\n' "$name" "$window" "$times" "$mbps" "$(echo "$mbps / $hpa" | bc -l)"
done
echo "(tftpd-hpa 5.2 and dnsmasq 2.90 do not implement windowsize: they only run at 1)"
