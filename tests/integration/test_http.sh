#!/bin/bash
# The HTTP boot server against curl over a veth pair: artifacts with every
# Range form, conditionals and validators, a 5 GiB sparse file, refusals
# (escapes, methods, bodies, oversized URLs and headers), per-client limits
# while another client is served, /healthz and /metrics, the iPXE script
# route with and without identity and with hostile queries, and the UEFI
# HTTP boot path from a proxyDHCP answer to ipxe.efi to the script.
. "$(dirname "$0")/lib.sh"
need curl python3 jq sha256sum cmp truncate

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.88.0.1/24 "$CLI" vc0 10.88.0.2/24
ip -n "$CLI" addr add 10.88.0.3/24 dev vc0
HOST=10.88.0.1
URL=http://$HOST:8080
ROOT=$T/root
H=$T/headers
B=$T/body
mkdir -p "$ROOT/enroll" "$ROOT/dir"

head -c 1000 /dev/urandom >"$ROOT/small.bin"
head -c $((3 << 20)) /dev/urandom >"$ROOT/medium.bin"   # past the inline digest size: the digest worker
BIG=$((5 << 30))
truncate -s $BIG "$ROOT/huge.img"
printf 'the-end' | dd of="$ROOT/huge.img" bs=1 seek=$((BIG - 7)) conv=notrunc status=none
if [ -f "$TOP/pxe/ipxe.efi" ]; then cp "$TOP/pxe/ipxe.efi" "$ROOT/"; else fake_efi "$ROOT/ipxe.efi" 0x8664; fi
fake_kernel "$ROOT/enroll/vmlinuz"
head -c 3000 /dev/urandom >"$ROOT/enroll/initrd.img"
cp "$TOP/pxe/enroll.ipxe.tmpl" "$ROOT/"
echo secret >"$T/outside"
ln -s /etc/passwd "$ROOT/escape"

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: $HOST }
state_dir: $T/state
control: { socket: $T/control.sock }
dhcp: { mode: proxy }
tftp: { enabled: false }
http: { listen_address: $HOST, port: 8080, root: $ROOT, max_per_client: 4, idle_timeout: 3s, max_header_bytes: 8192 }
boot:
  retry_delay: 7s
  enroll: { kernel: enroll/vmlinuz, initrd: enroll/initrd.img, cmdline: "console=ttyS0 quiet" }
CFG
metald_start "$SRV"

c() { in_ns "$CLI" curl -sS --max-time 20 "$@"; }
quiet() { "$@" 2>/dev/null; }
# get ARGS...: one request; headers in $H, body in $B
get() { rm -f "$H" "$B"; c -D "$H" -o "$B" "$@"; }
status() { head -n 1 "$H" | awk '{ print $2 }'; }
header() { awk -v n="$1" 'tolower($0) ~ "^" tolower(n) ":" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); print; exit }' "$H"; }
expect_status() { [ "$(status)" = "$1" ] || fail "$2: status $(status), expected $1"; }
metric() { c "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

log "health and metrics baseline"
get "$URL/healthz"
expect_status 200 /healthz
[ "$(cat "$B")" = ok ] || fail "/healthz body: $(cat "$B")"
STATIC_BEFORE=$(metric 'metald_http_requests_total{route="static",status="2xx"}')

log "GET and HEAD, validators, keep-alive"
get "$URL/small.bin"
expect_status 200 "GET small.bin"
cmp -s "$B" "$ROOT/small.bin" || fail "small.bin differs"
[ "$(header Content-Length)" = 1000 ] || fail "Content-Length $(header Content-Length)"
[ "$(header Accept-Ranges)" = bytes ] || fail "no Accept-Ranges: bytes"
[ -n "$(header Last-Modified)" ] || fail "no Last-Modified"
[ "$(header ETag)" = "\"$(sha256sum <"$ROOT/small.bin" | cut -d' ' -f1)\"" ] || fail "ETag $(header ETag) is not the sha256"
get -I "$URL/medium.bin"
expect_status 200 "HEAD medium.bin"
[ "$(header Content-Length)" = $((3 << 20)) ] || fail "HEAD Content-Length $(header Content-Length)"
ETAG=$(header ETag)
[ "$ETAG" = "\"$(sha256sum <"$ROOT/medium.bin" | cut -d' ' -f1)\"" ] || fail "medium ETag $ETAG is not the sha256"
REUSED=$(c -v -o /dev/null -o /dev/null "$URL/small.bin" "$URL/small.bin" 2>&1 | grep -c "Re-using existing connection" || true)
[ "$REUSED" -ge 1 ] || fail "the connection was not kept alive"

log "ranges"
check_range() {        # check_range RANGE OFFSET LENGTH
        get -r "$1" "$URL/medium.bin"
        expect_status 206 "range $1"
        [ "$(header Content-Range)" = "bytes $2-$(($2 + $3 - 1))/$((3 << 20))" ] ||
                fail "range $1: Content-Range $(header Content-Range)"
        cmp -s "$B" <(tail -c +$(($2 + 1)) "$ROOT/medium.bin" | head -c "$3") || fail "range $1: wrong bytes"
}
check_range 100-199 100 100
check_range 3145000- 3145000 $(((3 << 20) - 3145000))
check_range -500 $(((3 << 20) - 500)) 500
check_range 0-99999999 0 $((3 << 20))
get -r $((3 << 20))- "$URL/medium.bin"
expect_status 416 "unsatisfiable range"
[ "$(header Content-Range)" = "bytes */$((3 << 20))" ] || fail "416 Content-Range $(header Content-Range)"
get -r 0-1,5-9 "$URL/medium.bin"
expect_status 200 "multi-range"
cmp -s "$B" "$ROOT/medium.bin" || fail "multi-range did not get the whole file"
[ -z "$(header Content-Range)" ] || fail "multi-range 200 with Content-Range $(header Content-Range)"
case "$(header Content-Type)" in multipart/*) fail "multi-range got $(header Content-Type)";; esac

log "conditionals"
get -H "If-None-Match: $ETAG" "$URL/medium.bin"
expect_status 304 "If-None-Match"
[ ! -s "$B" ] || fail "304 had a body"
get -r 0-9 -H 'If-Range: "not-the-etag"' "$URL/medium.bin"
expect_status 200 "If-Range mismatch"
cmp -s "$B" "$ROOT/medium.bin" || fail "If-Range mismatch did not get the whole file"
get -r 0-9 -H "If-Range: $ETAG" "$URL/medium.bin"
expect_status 206 "If-Range match"

log "a 5 GiB sparse file (its digest is computed on first use)"
get -I "$URL/huge.img"
expect_status 200 "HEAD huge.img"
[ "$(header Content-Length)" = $BIG ] || fail "5 GiB Content-Length $(header Content-Length)"
[[ "$(header ETag)" =~ ^\"[0-9a-f]{64}\"$ ]] || fail "5 GiB ETag $(header ETag)"
get -r $((BIG - 7))- "$URL/huge.img"
expect_status 206 "range at the end of 5 GiB"
[ "$(cat "$B")" = the-end ] || fail "tail of the 5 GiB file: $(cat "$B")"
[ "$(header Content-Range)" = "bytes $((BIG - 7))-$((BIG - 1))/$BIG" ] || fail "5 GiB Content-Range $(header Content-Range)"
# files of 8 MiB and more get a thread per connection; the rest, and every other route, the pool
[ "$(metric 'metald_http_connections_total{mode="stream"}')" -ge 2 ] || fail "huge.img was not streamed by a thread of its own"
[ "$(metric 'metald_http_connections_total{mode="pool"}')" -ge 10 ] || fail "small requests did not go to the pool"

log "refusals"
for path in ../outside %2e%2e/outside escape dir; do
        get --path-as-is "$URL/$path"
        expect_status 403 "$path"
        ! grep -q -e secret -e root: "$B" || fail "$path leaked a file"
done
get "$URL/nothing-here"
expect_status 404 "missing file"
get -X POST --data-binary abc "$URL/small.bin"
expect_status 405 POST
[ "$(header Allow)" = "GET, HEAD" ] || fail "405 without Allow: GET, HEAD"
get -X GET --data-binary abc "$URL/small.bin"
expect_status 413 "GET with a body"
get "$URL/$(head -c 3000 /dev/zero | tr '\0' a)"
expect_status 414 "long URL"
# MHD answers a request whose headers outgrow max_header_bytes with 431 itself
get -H "X-Filler: $(head -c 9000 /dev/zero | tr '\0' a)" "$URL/healthz"
expect_status 431 "oversized header"
get -H "Host: $HOST" "$URL/small.bin"
expect_status 200 "Host without a port"

log "per-client connection cap while another client is served"
cat >"$T/hold.py" <<'PY'
import socket, sys, time
held = []
for _ in range(int(sys.argv[3])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")     # never finished
    held.append(s)
open(sys.argv[4], "w").write("ready\n")
time.sleep(30)
PY
bg "$CLI" python3 "$T/hold.py" $HOST 8080 4 "$T/hold.ready"
wait_until 5 test -s "$T/hold.ready" || fail "the slow client did not connect"
expect_fail quiet c --max-time 2 -o /dev/null "$URL/healthz"
START=$(date +%s%N)
c --interface 10.88.0.3 --max-time 2 -o "$T/medium.copy" "$URL/medium.bin" || fail "another client was not served"
cmp -s "$T/medium.copy" "$ROOT/medium.bin" || fail "another client got a wrong copy"
[ $(($(date +%s%N) - START)) -lt 1000000000 ] || fail "another client waited behind the slow one"
# the idle timeout (3 s) frees the slow client's connections
wait_until 10 quiet c --max-time 2 -o /dev/null "$URL/healthz" || fail "idle connections were not closed"
kill "${PIDS[-1]}" 2>/dev/null || true

log "iPXE script route"
get "$URL/boot.ipxe"
expect_status 200 "boot.ipxe"
[[ "$(header Content-Type)" == text/plain* ]] || fail "script Content-Type $(header Content-Type)"
grep -qxF 'chain --replace http://10.88.0.1:8080/boot.ipxe?mac=${netX/mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}&arch=${buildarch}&platform=${platform} || goto failed' "$B" ||
        fail "no identity chain line: $(cat "$B")"
IDENTITY="mac=52-54-00-aa-bb-cc&uuid=4c4c4544-0042-3510-8051-b4c04f4b4e32&serial=SN%201"
get "$URL/boot.ipxe?$IDENTITY&arch=x86_64&platform=efi"
expect_status 200 "efi script"
# each enrollment boot carries a fresh one-time nonce: 22 base64url characters
NONCE_RE='metald\.nonce=[A-Za-z0-9_-]{22}'
grep -qxE "kernel http://10\.88\.0\.1:8080/enroll/vmlinuz initrd=initrd\.img console=ttyS0 quiet metald\.url=http://10\.88\.0\.1:8080 metald\.mac=52:54:00:aa:bb:cc $NONCE_RE \|\| goto failed" "$B" ||
        fail "efi kernel line: $(cat "$B")"
NONCE1=$(grep -oE "$NONCE_RE" "$B")
grep -qxF "initrd http://10.88.0.1:8080/enroll/initrd.img || goto failed" "$B" || fail "efi initrd line: $(cat "$B")"
get "$URL/boot.ipxe?$IDENTITY&arch=i386&platform=pcbios"
grep -qxE "kernel http://10\.88\.0\.1:8080/enroll/vmlinuz console=ttyS0 quiet metald\.url=http://10\.88\.0\.1:8080 metald\.mac=52:54:00:aa:bb:cc $NONCE_RE \|\| goto failed" "$B" ||
        fail "pcbios kernel line: $(cat "$B")"
[ "$(grep -oE "$NONCE_RE" "$B")" != "$NONCE1" ] || fail "two boots got the same nonce"
grep -qxF "initrd http://10.88.0.1:8080/enroll/initrd.img || goto failed" "$B" || fail "pcbios initrd line: $(cat "$B")"
grep -q '"GET /boot.ipxe?mac=52-54-00-aa-bb-cc.*" 200 .*script=enroll mac=52:54:00:aa:bb:cc machine=m-525400aabbcc' "$T/metald.log" ||
        fail "no access log line for the enrollment script"

expect_retry() {        # expect_retry QUERY WHAT
        get "$URL/boot.ipxe?$1"
        expect_status 200 "$2"
        grep -q '^echo metald: this machine cannot be booted yet: ' "$B" || fail "$2: no reason echoed: $(cat "$B")"
        grep -qx 'sleep 7' "$B" || fail "$2: no sleep: $(cat "$B")"
        grep -qxF 'chain --replace http://10.88.0.1:8080/boot.ipxe || goto retry' "$B" || fail "$2: no chain back"
        [ "$(wc -l <"$B")" = 6 ] || fail "$2: the script has extra lines: $(cat "$B")"
}
expect_retry 'mac=%24%7Bnet0%2Fip%7D&arch=x86_64&platform=efi' "expansion in mac"
expect_retry 'mac=52-54-00-aa-bb-cc&arch=x86_64&platform=efi&serial=%0Aecho%20pwned%20%23' "newline in serial"
expect_retry 'mac=52-54-00-aa-bb-cc&mac=52-54-00-aa-bb-cd&arch=x86_64&platform=efi' "duplicate mac"
expect_retry 'mac=%&arch=%zz' "bad percent-encoding"
expect_retry "mac=52-54-00-aa-bb-cc&arch=x86_64&platform=efi&serial=$(head -c 300 /dev/zero | tr '\0' A)" "long serial"
expect_retry 'mac=52-54-00-aa-bb-cc&arch=x86_64&platform=efi&serial=%FF%FE' "invalid UTF-8"
expect_retry 'mac=52-54-00-aa-bb-cc&arch=sparc64&platform=efi' "unknown arch"
mv "$ROOT/enroll/initrd.img" "$ROOT/enroll/initrd.away"
expect_retry "$IDENTITY&arch=x86_64&platform=efi" "missing initrd"
grep -q 'initrd is missing' "$B" || fail "missing initrd not explained: $(cat "$B")"
mv "$ROOT/enroll/initrd.away" "$ROOT/enroll/initrd.img"

log "UEFI HTTP boot: proxyDHCP URL, ipxe.efi, then the script"
probe() { in_ns "$CLI" python3 "$TOP/tests/integration/dhcp_probe.py" pxe vc0 $HOST "$@"; }
R=$(probe --arch 16 --vci HTTPClient:Arch:00016:UNDI:003001) || fail "no answer to an HTTPClient"
EFI_URL=$(jq -r .file <<<"$R")
[ "$EFI_URL" = "$URL/ipxe.efi" ] || fail "HTTP boot URL $EFI_URL"
get -I "$EFI_URL"
expect_status 200 "HEAD ipxe.efi"
[ "$(header Content-Type)" = application/efi ] || fail "ipxe.efi Content-Type $(header Content-Type)"
R=$(probe --arch 7 --ipxe) || fail "no answer to the chainloaded iPXE"
SCRIPT_URL=$(jq -r .file <<<"$R")
get "$SCRIPT_URL"
grep -q "^chain --replace $SCRIPT_URL?mac=" "$B" || fail "iPXE's script URL $SCRIPT_URL is not the script route"

log "metrics"
c "$URL/metrics" >"$T/metrics"
python3 - "$T/metrics" <<'PY' || fail "/metrics is not Prometheus text"
import re, sys
typed, sample = set(), re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? [-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf|NaN)$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    m = re.match(r'^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$', line)
    if m:
        typed.add(m.group(1))
        continue
    if line.startswith("# HELP ") or not line:
        continue
    m = sample.match(line)
    if not m:
        sys.exit("bad line: " + line)
    name = m.group(1)
    if not any(name == t or name in (t + "_bucket", t + "_sum", t + "_count") for t in typed):
        sys.exit("sample without # TYPE: " + line)
PY
for t in metald_http_requests_total metald_http_sent_bytes_total metald_http_request_seconds; do
        grep -q "^# TYPE $t " "$T/metrics" || fail "no # TYPE line for $t"
done
STATIC_AFTER=$(awk '$1 == "metald_http_requests_total{route=\"static\",status=\"2xx\"}" { print $2 }' "$T/metrics")
[ "${STATIC_AFTER:-0}" -gt "${STATIC_BEFORE:-0}" ] || fail "static 2xx counter did not move ($STATIC_BEFORE -> $STATIC_AFTER)"
grep -q '^metald_http_requests_total{route="script",status="2xx"} [1-9]' "$T/metrics" || fail "script counter did not move"
grep -q '^metald_http_requests_total{route="other",status="4xx"} [1-9]' "$T/metrics" || fail "refusals were not counted"

metald_stop
log "ok"
