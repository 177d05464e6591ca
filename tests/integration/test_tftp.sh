#!/bin/bash
# TFTP against real clients (tftp-hpa, curl, atftp) over a veth pair, then over
# the server namespace's loopback: byte-identical downloads at several block
# sizes (block numbers wrap past 65535 at 512), a negotiated windowsize seen in
# the OACK on the wire, refusals for traversal, symlinks, directories and
# writes, and the server still serving afterwards.
. "$(dirname "$0")/lib.sh"
need tftp atftp curl tshark cmp

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" veth-srv 10.99.0.1/24 "$CLI" veth-cli 10.99.0.2/24
HOST=10.99.0.1
ROOT=$T/root
OUT=$T/out
mkdir -p "$ROOT/sub" "$ROOT/dir" "$OUT"

head -c $((64 << 20)) /dev/urandom >"$ROOT/big"
head -c 1000 /dev/urandom >"$ROOT/small"
# 187904 is a multiple of both 512 and 1468: the transfers end with an empty DATA
head -c $((187904 * 3)) /dev/urandom >"$ROOT/sub/exact"
echo secret >"$T/outside"
ln -s /etc/passwd "$ROOT/escape"
ln -s small "$ROOT/inside-link"
mkfifo "$ROOT/fifo"

# write_config FILE IFACE: TFTP only; without an interface the sockets are not bound to a device.
write_config() {
        local iface=$2
        cat >"$1" <<EOF
server: { ${iface:+interface: $iface, }address: $HOST }
state_dir: $T/state
control: { socket: $T/control.sock }
dhcp: { enabled: false }
http: { enabled: false }
tftp: { root: $ROOT, port: 69 }
EOF
}
write_config "$T/veth.yaml" veth-srv
write_config "$T/any.yaml" ""

# capture_start NS IF FILE: OACKs only (UDP payload opcode 6), so the bulk transfers cost tshark nothing.
capture_start() {
        local ns=$1 ifname=$2 file=$3
        bg "$ns" tshark -l -a duration:50 -i "$ifname" -f "udp and udp[8:2] = 6" -w "$file" 2>"$file.err"
        # "Capturing on" comes before the capture is armed; "Capture started" after
        wait_until 20 grep -q "Capture started" "$file.err" || fail "tshark did not start: $(cat "$file.err")"
}

capture_stop() {
        local pid=${PIDS[-1]}
        sleep 0.3
        kill -INT "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
}

# oack_options FILE: the option names and values of every captured OACK, one line each.
oack_options() {
        tshark -r "$1" -d udp.port==1-65535,tftp -T fields -e tftp.option.name -e tftp.option.value 2>/dev/null
}

fetch_tftp_hpa() { in_ns "$CLI" timeout 120 tftp -m binary "$HOST" -c get "$1" "$2"; }
fetch_curl() { in_ns "$CLI" timeout 120 curl -sS --tftp-blksize "$1" -o "$3" "tftp://$HOST/$2"; }

metald_start "$SRV" "$T/veth.yaml"

log "tftp-hpa, 64 MiB at blksize 512 (block numbers wrap twice)"
fetch_tftp_hpa big "$OUT/big.hpa" || fail "tftp-hpa download failed"
cmp "$ROOT/big" "$OUT/big.hpa" || fail "tftp-hpa copy differs"

log "curl at 512, 1468 and 65464 (clamped to the veth MTU)"
capture_start "$CLI" veth-cli "$T/curl.pcap"
fetch_curl 512 sub/exact "$OUT/exact.512" || fail "curl 512 failed"
fetch_curl 1468 sub/exact "$OUT/exact.1468" || fail "curl 1468 failed"
fetch_curl 1468 big "$OUT/big.curl" || fail "curl 1468 of the big file failed"
fetch_curl 65464 small "$OUT/small.curl" || fail "curl 65464 failed"
capture_stop
cmp "$ROOT/sub/exact" "$OUT/exact.512" || fail "curl 512 copy differs"
cmp "$ROOT/sub/exact" "$OUT/exact.1468" || fail "curl 1468 copy differs"
cmp "$ROOT/big" "$OUT/big.curl" || fail "curl big copy differs"
cmp "$ROOT/small" "$OUT/small.curl" || fail "curl 65464 copy differs"
oack_options "$T/curl.pcap" >"$T/curl.oack"
grep -q 'blksize.*1468' "$T/curl.oack" || fail "no OACK with blksize 1468: $(cat "$T/curl.oack")"
if grep -q 'blksize.*65464' "$T/curl.oack"; then fail "blksize 65464 was not clamped on the veth"; fi

log "atftp with windowsize 16, checked in the OACK on the wire"
capture_start "$CLI" veth-cli "$T/atftp.pcap"
in_ns "$CLI" timeout 120 atftp --option "blksize 1468" --option "windowsize 16" -g -r big -l "$OUT/big.atftp" "$HOST" \
        >"$T/atftp.log" 2>&1 || fail "atftp download failed: $(cat "$T/atftp.log")"
capture_stop
cmp "$ROOT/big" "$OUT/big.atftp" || fail "atftp copy differs"
oack_options "$T/atftp.pcap" >"$T/atftp.oack"
grep -q 'windowsize.*16' "$T/atftp.oack" || fail "no OACK with windowsize 16: $(cat "$T/atftp.oack")"
grep -q 'blksize.*1468' "$T/atftp.oack" || fail "no OACK with blksize 1468: $(cat "$T/atftp.oack")"
grep -q '"big" to 10.99.0.2:[0-9]*: 67108864 bytes, blksize 1468, windowsize 16' "$T/metald.log" ||
        fail "no log line for the windowed transfer"

log "refusals: traversal, symlinks, directories, fifos, writes, missing files"
refused() {
        local want=$1 path=$2 rc=0
        in_ns "$CLI" timeout 10 curl -sS --path-as-is -o /dev/null "tftp://$HOST/$path" 2>/dev/null || rc=$?
        [ "$rc" = "$want" ] || fail "curl $path: exit $rc, want $want"
}
refused 68 missing                      # TFTP error 1: not found
refused 69 ../outside                   # error 2: access violation
refused 69 %2F..%2Foutside
refused 69 sub/../../outside
refused 69 %5C..%5Coutside              # backslashes are separators
refused 69 escape                       # absolute symlink out of the root
refused 69 inside-link                  # any symlink is refused
refused 69 dir
refused 69 fifo
in_ns "$CLI" timeout 10 tftp -m binary "$HOST" -c get ../outside "$OUT/x" >"$T/hpa-err.log" 2>&1 || true
grep -q "Error code 2" "$T/hpa-err.log" || fail "tftp-hpa traversal: $(cat "$T/hpa-err.log")"
in_ns "$CLI" timeout 10 tftp -m binary "$HOST" -c put "$ROOT/small" upload >"$T/hpa-put.log" 2>&1 || true
grep -q "Error code 2" "$T/hpa-put.log" || fail "tftp-hpa write: $(cat "$T/hpa-put.log")"
rc=0
in_ns "$CLI" timeout 10 curl -sS -T "$ROOT/small" "tftp://$HOST/upload" 2>/dev/null || rc=$?
[ "$rc" = 69 ] || fail "curl upload: exit $rc, want 69"
[ ! -e "$ROOT/upload" ] || fail "a write request created a file"
in_ns "$CLI" timeout 10 tftp -m netascii "$HOST" -c get small "$OUT/x" >"$T/hpa-ascii.log" 2>&1 || true
grep -q "Error code 0: netascii not supported" "$T/hpa-ascii.log" || fail "netascii: $(cat "$T/hpa-ascii.log")"

log "still serving"
fetch_curl 1468 small "$OUT/small.again" || fail "no longer serving after refusals"
cmp "$ROOT/small" "$OUT/small.again" || fail "copy after refusals differs"
metald_stop

log "loopback in the server namespace: blksize 65464 is used"
metald_start "$SRV" "$T/any.yaml"
in_ns "$SRV" timeout 120 curl -sS --tftp-blksize 65464 -o "$OUT/big.lo" "tftp://127.0.0.1/big" ||
        fail "curl over loopback failed"
cmp "$ROOT/big" "$OUT/big.lo" || fail "loopback copy differs"
grep -q '"big" to 127.0.0.1:[0-9]*: 67108864 bytes, blksize 65464' "$T/metald.log" ||
        fail "loopback transfer did not use blksize 65464"
metald_stop
log "ok"
