#!/bin/bash
# HTTP benchmark: metald against nginx (nginx-light, sendfile on), both
# serving the same root in the same namespace, loaded by wrk over a veth pair:
# a 1 GiB artifact (bytes/s) and a small script-sized static file
# (requests/s) at 1, 64 and 256 connections. Each point alternates the two
# servers ROUNDS times for SECS seconds and reports the medians, so that
# drift in the machine (other load, CPU steal on a VM) hits both. Then DHCP
# answer latency (p50/p99 of DISCOVER->OFFER and REQUEST->ACK, COUNT
# sequential exchanges with distinct MACs) from the same metald in full DHCP
# mode, idle and while 64 wrk connections stream the 1 GiB artifact from it.
# Prints tables and ratios; asserts nothing about timings.
#
#   METALD_BUILD=build tests/bench/bench-http.sh
. "$(dirname "$0")/../integration/lib.sh"
need wrk nginx python3 jq bc

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-5}
COUNT=${COUNT:-2000}
CONNS=${CONNS:-"1 64 256"}
THREADS=${THREADS:-0}                   # http.threads for metald; 0 = two per CPU
SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/16 "$CLI" vc0 10.77.0.2/16
HOST=10.77.0.1
ROOT=$T/root
mkdir -p "$ROOT"
chmod 755 "$T" "$ROOT"
log "writing a 1 GiB artifact"
head -c $((1 << 30)) /dev/urandom >"$ROOT/artifact.img"
head -c 700 /dev/urandom | base64 -w 64 >"$ROOT/script.ipxe"    # about the size of a boot script
chmod 644 "$ROOT"/*

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: $HOST }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: warning
dhcp:
  lease_time: 1h
  subnets: [{ network: 10.77.0.0/16, ranges: [10.77.1.0-10.77.255.254] }]
tftp: { enabled: false }
http: { listen_address: $HOST, port: 8080, root: $ROOT, threads: $THREADS, max_connections: 4096, max_per_client: 1024 }
CFG

cat >"$T/nginx.conf" <<CFG
daemon off;
user root;
worker_processes auto;
pid $T/nginx.pid;
error_log $T/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    default_type application/octet-stream;
    server {
        listen $HOST:8081;
        root $ROOT;
    }
}
CFG

metald_start "$SRV"
bg "$SRV" nginx -c "$T/nginx.conf" -e "$T/nginx.err"
wait_until 10 in_ns "$CLI" curl -sf -o /dev/null "http://$HOST:8081/script.ipxe" || fail "nginx did not start"
# the digest is computed once per file version; do it before measuring
in_ns "$CLI" curl -sf -o /dev/null -I "http://$HOST:8080/artifact.img" || fail "metald does not serve the artifact"
in_ns "$CLI" curl -sf -o /dev/null "http://$HOST:8080/artifact.img" && in_ns "$CLI" curl -sf -o /dev/null "http://$HOST:8081/artifact.img"

# to_bytes "1.23GB": wrk's human units to a number
to_bytes() {
        awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
                m = u == "KB" ? 1024 : u == "MB" ? 1048576 : u == "GB" ? 1073741824 : u == "TB" ? 1099511627776 : 1;
                printf "%.0f\n", n * m }'
}

# run SERVER_PORT FILE CONNS: "requests/s bytes/s" from one wrk run
run() {
        local port=$1 file=$2 conns=$3 threads=2 out
        [ "$conns" -lt 2 ] && threads=1         # wrk needs a connection per thread
        out=$(in_ns "$CLI" wrk -t$threads -c"$conns" -d"${SECS}s" "http://$HOST:$port/$file" 2>&1) || fail "wrk: $out"
        echo "$out" >>"$T/wrk.log"
        grep -E "Socket errors|Non-2xx" <<<"$out" | sed "s|^|[port $port $file c=$conns] |" >&2 || true
        echo "$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out") $(to_bytes "$(awk '/^Transfer\/sec:/ { print $2 }' <<<"$out")")"
}

# median_of FIELD "req/s bytes/s"...: the run with the median value in FIELD (1 or 2)
median_of() {
        local k=$1
        shift
        printf '%s\n' "$@" | sort -g -k"$k,$k" | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}
# cpu_ticks: "total steal" from /proc/stat
cpu_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9 }' /proc/stat; }

declare -A RES
read -r T0 S0 <<<"$(cpu_ticks)"
for file in artifact.img script.ipxe; do
        for c in $CONNS; do
                declare -a n=() m=()
                for _ in $(seq "$ROUNDS"); do
                        n+=("$(run 8081 "$file" "$c")")
                        m+=("$(run 8080 "$file" "$c")")
                done
                k=1
                [ "$file" = artifact.img ] && k=2
                RES[$file,$c,nginx]=$(median_of $k "${n[@]}")
                RES[$file,$c,metald]=$(median_of $k "${m[@]}")
                log "$file c=$c (req/s bytes/s) nginx: ${n[*]} | metald: ${m[*]}"
        done
done
read -r T1 S1 <<<"$(cpu_ticks)"

latency() {
        in_ns "$CLI" timeout 600 python3 "$TOP/tests/bench/dhcp_latency.py" vc0 $HOST "$COUNT" "$1" ||
                fail "DHCP prober failed"
}
log "DHCP latency, idle"
IDLE=$(latency 02:00:00:01:00:00)
log "DHCP latency, 64 connections streaming the artifact from metald"
bg "$CLI" wrk -t2 -c64 -d600s "http://$HOST:8080/artifact.img"
WRK=${PIDS[-1]}
sleep 2
LOADED=$(latency 02:00:00:02:00:00)
kill "$WRK" 2>/dev/null
wait "$WRK" 2>/dev/null || true
metald_stop

echo
echo "HTTP, wrk over a veth pair, median of $ROUNDS alternating ${SECS}s runs per server and point;" \
        "metald threads=${THREADS} (0: two per CPU), $(nproc) CPUs, CPU steal during the runs" \
        "$(echo "100 * ($S1 - $S0) / ($T1 - $T0)" | bc)%"
printf '| %-12s | %5s | %-10s | %14s | %14s | %12s |\n' file conns metric nginx metald metald/nginx
echo "|--------------|-------|------------|----------------|----------------|--------------|"
for file in artifact.img script.ipxe; do
        for c in $CONNS; do
                read -r nreq nbytes <<<"${RES[$file,$c,nginx]}"
                read -r mreq mbytes <<<"${RES[$file,$c,metald]}"
                if [ "$file" = artifact.img ]; then
                        metric="MB/s"
                        n=$(echo "$nbytes / 1000000" | bc -l)
                        m=$(echo "$mbytes / 1000000" | bc -l)
                else
                        metric="requests/s"
                        n=$nreq
                        m=$mreq
                fi
                printf '| %-12s | %5s | %-10s | %14.1f | %14.1f | %11.2fx |\n' "$file" "$c" "$metric" "$n" "$m" \
                        "$(echo "$m / $n" | bc -l)"
        done
done
echo
echo "DHCP answer latency from metald, $COUNT sequential DISCOVER/REQUEST exchanges (ms)"
printf '| %-34s | %8s | %8s | %8s | %8s | %5s |\n' condition p50 p99 "offer p99" "ack p99" lost
echo "|------------------------------------|----------|----------|-----------|----------|-------|"
for row in "idle|$IDLE" "64 conns streaming 1 GiB|$LOADED"; do
        IFS='|' read -r name j <<<"$row"
        printf '| %-34s | %8s | %8s | %9s | %8s | %5s |\n' "$name" "$(jq -r .p50_ms <<<"$j")" "$(jq -r .p99_ms <<<"$j")" \
                "$(jq -r .offer_p99_ms <<<"$j")" "$(jq -r .ack_p99_ms <<<"$j")" "$(jq -r .lost <<<"$j")"
done
