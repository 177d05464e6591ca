#!/bin/bash
# Image install benchmark: metald-agent's verified install against the
# pipeline an operator would otherwise run,
#
#   curl -s URL | zstd -d | tee >(sha256sum > /dev/null) | dd of=TARGET bs=4M conv=fsync
#
# URL being a plain zstd of the whole raw disk image, both served by the same
# metald over a veth pair between two namespaces. Two images, each signed with
# `metald image sign --build --compress zstd`:
#
#   sparse  4 GiB raw, 1 GiB of it data (25 %): a boot area, large extents of
#           compressible and of incompressible data, a mixed one, and 2,048
#           scattered 4 KiB blocks
#   dense   1 GiB raw, all data: incompressible, with 12 MiB of compressible
#           data every 64 MiB
#
# installed to a regular file and, when loop devices work here, to a loop
# device. One round runs every (image, target, method) once, the two methods
# back to back, the order flipped from round to round; a target is deleted
# after each run. The first round also compares every result with the raw
# image (cmp, not timed). Then the SHA-256 throughput of the agent's digest
# code (tests/bench/sha256_rate.c, linked with libmetald-core.a) against
# `openssl speed -evp sha256`, alternating; then DHCP answer latency from the
# same metald (tests/bench/dhcp_latency.py), idle and while LOADS agents
# install at once. Prints tables with medians, spreads and ratios; asserts
# nothing about timings.
#
#   METALD_BUILD=build tests/bench/bench-image.sh        # or: make bench-image
#
# Disk: the images, the plain zstd files and one target at a time live in
# $METALD_BUILD/bench-image (about 10 GiB at the peak), removed on exit.
. "$(dirname "$0")/../integration/lib.sh"
need curl zstd openssl python3 jq bc cmp tee dd sha256sum ss

ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-2000}             # DHCP exchanges per latency run
LOADS=${LOADS:-16}               # concurrent installs during the latency run
SHA_SECS=${SHA_SECS:-3}
SHA_ROUNDS=${SHA_ROUNDS:-5}
LOOP=${LOOP:-auto}               # auto: loop device targets when losetup works; no: files only
AGENT="$METALD_BUILD/metald-agent"
[ -x "$AGENT" ] || fail "$AGENT is not built"
[ -f "$METALD_BUILD/libmetald-core.a" ] || fail "$METALD_BUILD/libmetald-core.a is not built"
MIB=$((1 << 20))

W=$METALD_BUILD/bench-image
rm -rf "$W"
mkdir -p "$W"
W=$(cd "$W" && pwd)
EXIT_HOOKS+=("loop_detach" "rm -rf '$W'")
NEED_KB=$((12 * 1024 * 1024))
FREE_KB=$(df -Pk "$W" | awk 'NR == 2 { print $4 }')
[ "$FREE_KB" -ge "$NEED_KB" ] || skip "$W: $((FREE_KB / 1024 / 1024)) GiB free, this benchmark needs 12 GiB"

LOOPDEV=""
loop_detach() { [ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV" 2>/dev/null; LOOPDEV=""; }
LOOP_OK=no
if [ "$LOOP" != no ] && command -v losetup >/dev/null; then
        truncate -s 1M "$W/probe.img"
        if LOOPDEV=$(losetup --show -f "$W/probe.img" 2>"$T/losetup.err"); then
                LOOP_OK=yes
        else
                LOOP_WHY=$(cat "$T/losetup.err")
        fi
        loop_detach
        rm -f "$W/probe.img"
else
        LOOP_WHY=${LOOP_WHY:-"LOOP=no or no losetup"}
fi

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.79.0.1/16 "$CLI" vc0 10.79.0.2/16
HOST=10.79.0.1
ROOT=$W/root
mkdir -p "$ROOT/plain" "$W/keys"
chmod 755 "$W" "$ROOT"

# --- the images ---------------------------------------------------------------

TEXT_MAP=$(printf 'etaoins\n%.0s' {1..32})      # 256 bytes: 8 symbols, about 2.2:1 under zstd -3
rand() { head -c $(($1 * MIB)) /dev/urandom; }
text() { head -c $(($1 * MIB)) /dev/urandom | tr '\000-\377' "$TEXT_MAP"; }
# put FILE OFFSET_MIB: standard input into FILE at OFFSET_MIB
put() { dd of="$1" bs=1M seek="$2" conv=notrunc iflag=fullblock status=none; }
mixed() { for _ in $(seq $(($1 / 2))); do rand 1; text 1; done; }

log "writing the sparse 4 GiB image (1 GiB of data)"
mkdir -p "$W/src-sparse" "$W/src-dense" "$W/src-load"
SPARSE=$W/src-sparse/disk
truncate -s 4G "$SPARSE"
rand 1 | put "$SPARSE" 0                # partition table and boot loader
text 416 | put "$SPARSE" 16             # system files
rand 400 | put "$SPARSE" 1024           # packages, media: already compressed
mixed 192 | put "$SPARSE" 2560
text 7 | put "$SPARSE" 4088
python3 - "$SPARSE" <<'PY'              # metadata-like scattered 4 KiB blocks
import os, random, sys
fd, rnd = os.open(sys.argv[1], os.O_WRONLY), random.Random(7)
MIB = 1 << 20
busy = [(0, 16), (16, 432), (1024, 1424), (2560, 2752), (4088, 4096)]
done = set()
while len(done) < 2048:
    b = rnd.randrange(MIB // 4096, 4088 * 256)
    if b in done or b - 1 in done or b + 1 in done or any(s * 256 <= b < e * 256 for s, e in busy):
        continue
    done.add(b)
    os.pwrite(fd, os.urandom(4096), b * 4096)
os.close(fd)
PY
log "writing the dense 1 GiB image"
DENSE=$W/src-dense/disk
rand 1024 >"$DENSE"
for i in $(seq 0 15); do text 12 | put "$DENSE" $((i * 64 + 8)); done
LOADRAW=$W/src-load/disk
head -c $((256 * MIB)) "$DENSE" >"$LOADRAW"
for s in sparse dense load; do
        head -c 300000 /dev/urandom >"$W/src-$s/kernel"
        head -c 100000 /dev/urandom >"$W/src-$s/initrd"
done

"$METALD" image keygen --out "$W/site" >/dev/null
cp "$W/site.pub" "$W/keys/"
declare -A SIGN_S RAW_SIZE DATA_BYTES WIRE_BYTES PLAIN_BYTES SHA N_CHUNKS
for s in sparse dense load; do
        log "signing $s (sign --build --compress zstd) and compressing it whole (zstd -3)"
        t0=$EPOCHREALTIME
        "$METALD" image sign "$W/src-$s" --key "$W/site.key" --build --name "bench-$s" --version 1 \
                --compress zstd --out "$ROOT/$s" >"$T/sign-$s.log" 2>&1 || { cat "$T/sign-$s.log" >&2; fail "sign $s"; }
        SIGN_S[$s]=$(echo "$EPOCHREALTIME - $t0" | bc)
        [ "$s" = load ] || zstd -q -3 -T0 -c "$W/src-$s/disk" >"$ROOT/plain/$s.raw.zst"
        RAW_SIZE[$s]=$(stat -c %s "$W/src-$s/disk")
        DATA_BYTES[$s]=$(($(stat -c %b "$W/src-$s/disk") * $(stat -c %B "$W/src-$s/disk")))
        WIRE_BYTES[$s]=$(stat -c %s "$ROOT/$s/disk")
        [ "$s" = load ] || PLAIN_BYTES[$s]=$(stat -c %s "$ROOT/plain/$s.raw.zst")
        SHA[$s]=$(sha256sum <"$ROOT/$s/manifest.json" | cut -d' ' -f1)
        N_CHUNKS[$s]=$(jq '.artifacts.disk.chunks | length' "$ROOT/$s/manifest.json")
done
chmod -R a+rX "$ROOT"

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: $HOST }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: warning
dhcp:
  lease_time: 1h
  subnets: [{ network: 10.79.0.0/16, ranges: [10.79.1.0-10.79.255.254] }]
tftp: { enabled: false }
http: { listen_address: $HOST, port: 8080, root: $ROOT, max_connections: 4096, max_per_client: 1024 }
CFG
metald_start "$SRV"
BASE=http://$HOST:8080
# digests are computed once per file version, and both sides read from the page cache: one fetch of each first
for f in sparse/disk dense/disk load/disk plain/sparse.raw.zst plain/dense.raw.zst; do
        in_ns "$CLI" curl -sf -o /dev/null "$BASE/$f" || fail "metald does not serve $f"
done

# --- installs -----------------------------------------------------------------

PIPE='curl -s URL | zstd -d | tee >(sha256sum > /dev/null) | dd of=TARGET bs=4M conv=fsync'
AGENT_CMD='metald-agent install --manifest manifest.json --sig manifest.json.sig --manifest-sha256 HEX --keys DIR --url URL --target TARGET'

# target_new IMAGE KIND: an empty target for a run, in $TGT
target_new() {
        rm -f "$W/target" "$W/loop.img"
        if [ "$2" = file ]; then
                : >"$W/target"          # the agent opens it, dd would create it
                TGT=$W/target
        else
                truncate -s "${RAW_SIZE[$1]}" "$W/loop.img"
                LOOPDEV=$(losetup --show -f "$W/loop.img") || fail "losetup"
                TGT=$LOOPDEV
        fi
}
target_drop() { loop_detach; rm -f "$W/target" "$W/loop.img"; }

# one IMAGE KIND METHOD CHECK: seconds of one install in $ONE_T; with CHECK, the result compared with the raw image
one() {
        local s=$1 kind=$2 method=$3 check=$4 t0 t1 rc=0
        target_new "$s" "$kind"
        sync
        t0=$EPOCHREALTIME
        if [ "$method" = agent ]; then
                in_ns "$CLI" "$AGENT" install --manifest "$ROOT/$s/manifest.json" --sig "$ROOT/$s/manifest.json.sig" \
                        --manifest-sha256 "${SHA[$s]}" --keys "$W/keys" --url "$BASE/$s" --target "$TGT" \
                        --progress 3600 --log-level warning >>"$T/agent.log" 2>&1 || rc=$?
        else
                [ "$kind" = file ] && rm -f "$TGT"
                in_ns "$CLI" bash -c 'set -o pipefail; curl -s "$1" | zstd -d | tee >(sha256sum > /dev/null) | dd of="$2" bs=4M conv=fsync' \
                        _ "$BASE/plain/$s.raw.zst" "$TGT" >>"$T/pipe.log" 2>&1 || rc=$?
        fi
        t1=$EPOCHREALTIME
        [ $rc -eq 0 ] || { tail -5 "$T/agent.log" "$T/pipe.log" >&2; fail "$method install of $s to $kind exited $rc"; }
        if [ "$check" = check ]; then
                cmp "$TGT" "$W/src-$s/disk" >&2 || fail "$method install of $s to $kind differs from the raw image"
                CHECKED+=("$s/$kind/$method")
        fi
        target_drop
        ONE_T=$(echo "$t1 - $t0" | bc)
}

KINDS="file"
[ "$LOOP_OK" = yes ] && KINDS="file loop"
declare -A TIMES
CHECKED=()
for r in $(seq "$ROUNDS"); do
        check=nocheck
        [ "$r" = 1 ] && check=check
        order="agent pipe"
        [ $((r % 2)) = 0 ] && order="pipe agent"
        for s in sparse dense; do
                for kind in $KINDS; do
                        for m in $order; do
                                one "$s" "$kind" "$m" "$check"
                                TIMES[$s,$kind,$m]+="$ONE_T "
                                log "round $r: $s to $kind, $m: ${ONE_T}s"
                        done
                done
        done
done

# stats "V V V": "median min max"
stats() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ a[NR] = $1 } END { printf "%s %s %s\n", a[int((NR + 1) / 2)], a[1], a[NR] }'; }

# --- SHA-256 ------------------------------------------------------------------

log "building tests/bench/sha256_rate.c"
PKGS=$(sed -n 's/^PKGS *:= *//p' "$TOP/Makefile")
BENCH_CC=${BENCH_CC:-cc}
# shellcheck disable=SC2086 # a list of package names
BENCH_CFLAGS=${BENCH_CFLAGS:-"-D_GNU_SOURCE -I$TOP/include $(pkg-config --cflags $PKGS) -std=c17 -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -O2 -g"}
BENCH_LIBS=${BENCH_LIBS:-"$(pkg-config --libs $PKGS) -lpthread"}
# shellcheck disable=SC2086 # flag lists
(cd "$TOP" && $BENCH_CC $BENCH_CFLAGS -o "$T/sha256_rate" tests/bench/sha256_rate.c "$METALD_BUILD/libmetald-core.a" \
        $BENCH_LIBS) || fail "cannot build sha256_rate"
SSL_CMD="openssl speed -evp sha256 -bytes 4194304 -seconds $SHA_SECS"
HELPER_CMD="sha256_rate $SHA_SECS 1024; sha256_rate $SHA_SECS 4"
SSL=() CHUNK=() STREAM=() HOT=()
ssl_run() { $SSL_CMD 2>/dev/null | awk '$1 ~ /^sha256$/ { v = $2; sub(/k$/, "", v); printf "%.0f\n", v * 1000 }' | tail -1; }
# 1 GiB: the chunks stream through memory, as they do in an install; 4 MiB: one buffer that stays in the
# cache, as openssl speed's does
helper_run() {
        "$T/sha256_rate" "$SHA_SECS" 1024 >"$T/sha.out" || fail "sha256_rate failed"
        "$T/sha256_rate" "$SHA_SECS" 4 >"$T/sha-hot.out" || fail "sha256_rate failed"
}
for r in $(seq "$SHA_ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then SSL+=("$(ssl_run)"); helper_run; else helper_run; SSL+=("$(ssl_run)"); fi
        CHUNK+=("$(awk '$1 == "chunk" { print $2 }' "$T/sha.out")")
        STREAM+=("$(awk '$1 == "streaming" { print $2 }' "$T/sha.out")")
        HOT+=("$(awk '$1 == "chunk" { print $2 }' "$T/sha-hot.out")")
        log "SHA-256 round $r (bytes/s): openssl ${SSL[-1]}, agent chunks ${CHUNK[-1]}, streaming ${STREAM[-1]}," \
                "one 4 MiB buffer ${HOT[-1]}"
done

# --- DHCP under install load ----------------------------------------------------

latency() {
        in_ns "$CLI" timeout 900 python3 "$TOP/tests/bench/dhcp_latency.py" vc0 $HOST "$COUNT" "$1" ||
                fail "DHCP prober failed"
}
log "DHCP latency, idle"
IDLE=$(latency 02:00:00:01:00:00)

# worker I: installs the load image to its own target, again and again, until $W/stop exists
worker() {
        local i=$1 n=0 tgt=$W/load-target.$1
        while [ ! -e "$W/stop" ]; do
                : >"$tgt"
                in_ns "$CLI" "$AGENT" install --manifest "$ROOT/load/manifest.json" \
                        --sig "$ROOT/load/manifest.json.sig" --manifest-sha256 "${SHA[load]}" --keys "$W/keys" \
                        --url "$BASE/load" --target "$tgt" --progress 3600 --log-level warning \
                        >>"$T/load-$i.log" 2>&1 || { echo failed >>"$W/load-failed"; break; }
                n=$((n + 1))
                rm -f "$tgt"
        done
        rm -f "$tgt"
        echo "$n" >"$W/load-done.$i"
}
conns() { in_ns "$SRV" ss -Htn state established "( sport = :8080 )" | wc -l; }
log "DHCP latency while $LOADS agents install"
rm -f "$W/stop" "$W/load-failed"
WORKERS=()
for i in $(seq "$LOADS"); do
        worker "$i" &
        WORKERS+=($!)
        PIDS+=($!)
done
all_connected() { [ "$(conns)" -ge "$LOADS" ]; }
wait_until 30 all_connected || log "only $(conns) of $LOADS installs connected"
sleep 1
(while [ ! -e "$W/stop" ]; do conns; sleep 0.5; done) >"$T/conns.txt" &
SAMPLER=$!
t0=$EPOCHREALTIME
LOADED=$(latency 02:00:00:02:00:00)
PROBE_S=$(echo "$EPOCHREALTIME - $t0" | bc)
touch "$W/stop"
for p in "${WORKERS[@]}" "$SAMPLER"; do wait "$p" 2>/dev/null || true; done
[ ! -e "$W/load-failed" ] || { tail -3 "$T"/load-*.log >&2; fail "an install under load failed"; }
LOAD_DONE=$(cat "$W"/load-done.* | paste -sd+ | bc)
read -r CONN_MED CONN_MIN CONN_MAX <<<"$(stats "$(tr '\n' ' ' <"$T/conns.txt")")"
metald_stop

# --- report -------------------------------------------------------------------

gib() { echo "scale=2; $1 / 1073741824" | bc; }
mib() { echo "scale=1; $1 / 1048576" | bc; }
echo
echo "== machine"
echo "$(nproc) CPUs: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
        "kernel $(uname -r); target file system $(df -PT "$W" | awk 'NR == 2 { print $2 }')"
echo "$("$METALD" --version), $("$AGENT" --version) ($METALD_BUILD); $(${BENCH_CC} --version | head -1)"
echo "$(openssl version | cut -d' ' -f1-2); zstd $(zstd -V | grep -o 'v[0-9.]*' | head -1); $(curl --version | head -1 | cut -d' ' -f1-2);" \
        "$(dd --version | head -1)"
echo "loop device targets: $LOOP_OK${LOOP_WHY:+ ($LOOP_WHY)}"
echo
echo "== images"
printf '| %-6s | %8s | %10s | %6s | %20s | %20s | %7s |\n' image raw data chunks "signed disk (wire)" "plain zstd of raw" "sign s"
echo "|--------|----------|------------|--------|----------------------|----------------------|---------|"
for s in sparse dense; do
        printf '| %-6s | %4s GiB | %6s MiB | %6s | %16s MiB | %16s MiB | %7.1f |\n' "$s" "$(gib "${RAW_SIZE[$s]}")" \
                "$(mib "${DATA_BYTES[$s]}")" "${N_CHUNKS[$s]}" "$(mib "${WIRE_BYTES[$s]}")" "$(mib "${PLAIN_BYTES[$s]}")" \
                "${SIGN_S[$s]}"
done
echo
echo "== install: wall seconds, $ROUNDS alternating rounds (median, min-max), ratio = pipeline / agent (medians)"
echo "agent:    $AGENT_CMD"
echo "pipeline: $PIPE"
printf '| %-6s | %-6s | %-28s | %-28s | %8s | %-16s |\n' image target "agent s: median (min-max)" "pipeline s: median (min-max)" ratio "per round"
echo "|--------|--------|------------------------------|------------------------------|----------|------------------|"
for s in sparse dense; do
        for kind in $KINDS; do
                read -r am amin amax <<<"$(stats "${TIMES[$s,$kind,agent]}")"
                read -r pm pmin pmax <<<"$(stats "${TIMES[$s,$kind,pipe]}")"
                read -ra A <<<"${TIMES[$s,$kind,agent]}"
                read -ra P <<<"${TIMES[$s,$kind,pipe]}"
                per=""
                for k in "${!A[@]}"; do per+="$(printf '%.2f' "$(echo "${P[$k]} / ${A[$k]}" | bc -l)") "; done
                printf '| %-6s | %-6s | %6.2f (%6.2f-%6.2f)       | %6.2f (%6.2f-%6.2f)       | %7.2fx | %-16s |\n' \
                        "$s" "$kind" "$am" "$amin" "$amax" "$pm" "$pmin" "$pmax" "$(echo "$pm / $am" | bc -l)" "${per% }"
        done
done
echo "Targets: dense >= 1.0x, sparse (25 % data) >= 2.5x. Byte-identical to the raw image (cmp, round 1): ${CHECKED[*]}"
echo
echo "== SHA-256 on one core, bytes/s, $SHA_ROUNDS alternating rounds of ${SHA_SECS}s (median, min-max)"
echo "openssl: $SSL_CMD"
echo "agent:   $HELPER_CMD (tests/bench/sha256_rate.c: manifest_sha256() per 4 MiB of a 1 GiB buffer, then of one 4 MiB buffer)"
read -r sm smin smax <<<"$(stats "${SSL[*]}")"
printf '| %-48s | %10s | %21s | %10s |\n' path "MB/s" "min-max" "vs openssl"
echo "|--------------------------------------------------|------------|-----------------------|------------|"
printf '| %-48s | %10.1f | %9.1f-%-11.1f | %9.2fx |\n' "openssl speed -evp sha256, 4 MiB blocks" "$(echo "$sm / 1000000" | bc -l)" \
        "$(echo "$smin / 1000000" | bc -l)" "$(echo "$smax / 1000000" | bc -l)" 1
for row in "agent: manifest_sha256 per 4 MiB chunk, 1 GiB|${CHUNK[*]}" "begin/add/end, 4 MiB adds, 1 GiB|${STREAM[*]}" \
        "manifest_sha256, one 4 MiB buffer (in cache)|${HOT[*]}"; do
        IFS='|' read -r name vals <<<"$row"
        read -r m mn mx <<<"$(stats "$vals")"
        printf '| %-48s | %10.1f | %9.1f-%-11.1f | %9.2fx |\n' "$name" "$(echo "$m / 1000000" | bc -l)" \
                "$(echo "$mn / 1000000" | bc -l)" "$(echo "$mx / 1000000" | bc -l)" "$(echo "$m / $sm" | bc -l)"
done
echo "Target: >= 0.95x openssl"
echo
echo "== DHCP answer latency from metald, $COUNT sequential DISCOVER/REQUEST exchanges (ms)"
echo "load: $LOADS agents each installing the $(mib "${RAW_SIZE[load]}") MiB load image ($(mib "${WIRE_BYTES[load]}") MiB on the wire)" \
        "to a target of its own, again and again; established HTTP connections during the probe:" \
        "median $CONN_MED, min $CONN_MIN, max $CONN_MAX; $LOAD_DONE installs completed; probe ${PROBE_S}s"
printf '| %-34s | %8s | %8s | %9s | %8s | %5s |\n' condition p50 p99 "offer p99" "ack p99" lost
echo "|------------------------------------|----------|----------|-----------|----------|-------|"
for row in "idle|$IDLE" "$LOADS installs streaming|$LOADED"; do
        IFS='|' read -r name j <<<"$row"
        printf '| %-34s | %8s | %8s | %9s | %8s | %5s |\n' "$name" "$(jq -r .p50_ms <<<"$j")" "$(jq -r .p99_ms <<<"$j")" \
                "$(jq -r .offer_p99_ms <<<"$j")" "$(jq -r .ack_p99_ms <<<"$j")" "$(jq -r .lost <<<"$j")"
done
echo "Target: p99 < 20 ms under that load"
