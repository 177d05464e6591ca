#!/bin/bash
# metald-agent install against metald's HTTP service over a veth pair (rate
# limited, so a transfer takes seconds): a signed zstd image with unmapped
# ranges installed to a file that held 0xAA, byte-identical to the raw image
# plus the configuration record; metald killed mid-stream (the agent fetches
# the interrupted chunk again by Range); the agent killed mid-stream and run
# again (it resumes from its state file; the first MiB stays zero meanwhile);
# the manifest fetched over the agent API with the session bearer; a tampered
# chunk (the agent stops naming it, nothing of it reaches the target, the
# first MiB stays zero); a manifest digest metald did not announce.
. "$(dirname "$0")/lib.sh"
need python3 openssl zstd tc cmp

AGENT="$METALD_BUILD/metald-agent"
[ -x "$AGENT" ] || fail "$AGENT is not built"
SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.88.0.1/24 "$CLI" vc0 10.88.0.2/24
HOST=10.88.0.1
ROOT=$T/root
IMG=$ROOT/image
mkdir -p "$ROOT/enroll" "$IMG" "$T/keys"
fake_kernel "$ROOT/enroll/vmlinuz"
head -c 3000 /dev/urandom >"$ROOT/enroll/initrd.img"
cp "$TOP/pxe/enroll.ipxe.tmpl" "$ROOT/"

MIB=$((1 << 20))
RAW_SIZE=$((48 * MIB))
CONFIG_OFFSET=$((40 * MIB))     # unmapped in the image below
HOSTNAME_=worker-7

log "building and signing an image"
openssl genpkey -algorithm ed25519 -out "$T/site.key" 2>/dev/null
openssl pkey -in "$T/site.key" -pubout -out "$T/keys/site.pub"
KEY_ID=$(openssl pkey -pubin -in "$T/keys/site.pub" -outform DER | tail -c 32 | sha256sum | cut -c1-16)
case "$(uname -m)" in aarch64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;; esac
python3 - "$IMG" "$T" "$KEY_ID" "$ARCH" "$RAW_SIZE" "$CONFIG_OFFSET" "$HOSTNAME_" <<'PY'
import hashlib, json, os, struct, subprocess, sys
img, tmp, key_id, arch, raw_size, cfg_off, hostname = sys.argv[1:8]
raw_size, cfg_off = int(raw_size), int(cfg_off)
MIB, CHUNK = 1 << 20, 1 << 20
extents = [(0, MIB), (4 * MIB, 8 * MIB), (20 * MIB, 16 * MIB), (raw_size - MIB, MIB)]
raw = bytearray(raw_size)
for off, length in extents:
    raw[off:off + length] = os.urandom(length)
raw[0:512] = b"\xeb\x63\x90" + b"BOOTCODE" * 63 + b"\x00" * 3 + b"\x55\xaa"    # a boot sector
assert len(raw) == raw_size
sha = lambda b: hashlib.sha256(b).hexdigest()
disk, chunks, table = bytearray(), [], []
for off, length in extents:
    for c in range(off, off + length, CHUNK):
        n = min(CHUNK, off + length - c)
        # from a file, so that the frame says how large it is, which the agent requires
        part = os.path.join(tmp, "part")
        open(part, "wb").write(raw[c:c + n])
        frame = subprocess.run(["zstd", "-q", "-c", "-1", part], capture_output=True, check=True).stdout
        chunks.append({"offset": c, "length": n, "size": len(frame), "sha256": sha(frame)})
        table.append("%d %d %d %d" % (c, n, len(disk), len(frame)))
        disk += frame
def small(b):
    return {"size": len(b), "sha256": sha(b), "chunks": [{"size": len(b), "sha256": sha(b)}]}
kernel, initrd = b"kernel bytes", b"initrd bytes"
manifest = {
    "format": "metald-image/1", "name": "test-image", "version": 1, "arch": arch,
    "created": "2025-01-01T00:00:00Z", "expires": "2099-01-01T00:00:00Z", "key_id": key_id,
    "chunk_size": CHUNK,
    "artifacts": {
        "kernel": small(kernel), "initrd": small(initrd),
        "disk": {"size": len(disk), "sha256": sha(disk), "compression": "zstd", "raw_size": raw_size,
                 "extents": [list(e) for e in extents], "chunks": chunks},
    },
}
open(os.path.join(img, "manifest.json"), "w").write(json.dumps(manifest, separators=(",", ":")))
open(os.path.join(img, "disk"), "wb").write(disk)
open(os.path.join(img, "kernel"), "wb").write(kernel)
open(os.path.join(img, "initrd"), "wb").write(initrd)
open(os.path.join(tmp, "chunks.txt"), "w").write("\n".join(table) + "\n")
# the configuration record as docs/IMAGES.md lays it out ("The configuration partition"), written here independently
j = json.dumps({"hostname": hostname}, separators=(",", ":")).encode()
rec = b"METALD-CFG/1\n\0\0\0" + struct.pack("<II", len(j), 0) + hashlib.sha256(j).digest() + bytes(8) + j
rec += b"\0" * (-len(rec) % 4096)
raw[cfg_off:cfg_off + len(rec)] = rec
open(os.path.join(tmp, "expected.img"), "wb").write(raw)
open(os.path.join(tmp, "dirty.img"), "wb").write(b"\xaa" * raw_size)
PY
openssl pkeyutl -sign -rawin -inkey "$T/site.key" -in "$IMG/manifest.json" -out "$IMG/manifest.json.sig"
SHA=$(sha256sum <"$IMG/manifest.json" | cut -d' ' -f1)
N_CHUNKS=$(wc -l <"$T/chunks.txt")

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: $HOST }
state_dir: $T/state
control: { socket: $T/control.sock }
dhcp: { mode: proxy }
tftp: { enabled: false }
http: { listen_address: $HOST, port: 8080, root: $ROOT }
boot:
  enroll: { kernel: enroll/vmlinuz, initrd: enroll/initrd.img, cmdline: "console=ttyS0 quiet" }
CFG
metald_start "$SRV"
# about 26 MiB on the wire at 50 Mbit/s: a few seconds, time enough to break things mid-stream
tc -n "$SRV" qdisc add dev vs0 root tbf rate 50mbit burst 64kb latency 500ms

# install NAME URL ARGS...: runs the agent in the client namespace; exit status in $RC, output in $T/NAME.log
install_start() {
        local name=$1 url=$2; shift 2
        ALOG=$T/$name.log
        ip netns exec "$CLI" "$AGENT" install --keys "$T/keys" --url "$url" --target "$T/target" \
                --manifest-sha256 "$SHA" --hostname "$HOSTNAME_" --config-offset "$CONFIG_OFFSET" \
                --config-length 65536 --progress 1 "$@" >"$ALOG" 2>&1 &
        AGENT_PID=$!
        PIDS+=("$AGENT_PID")
}
install_wait() {
        RC=0
        wait "$AGENT_PID" || RC=$?
}
dirty() { cp "$T/dirty.img" "$T/target"; rm -f "$T/install.state"; }
# state_next: the next chunk the state file names, 0 without one
state_next() { [ -f "$T/install.state" ] && awk '{ print $NF }' "$T/install.state" || echo 0; }
past_chunk() {
        kill -0 "$AGENT_PID" 2>/dev/null || { cat "$ALOG" >&2; fail "the agent exited early"; }
        [ "$(state_next)" -ge "$1" ]
}
first_mib_zero() { cmp -s -n $MIB "$T/target" /dev/zero; }
FILES=(--manifest "$IMG/manifest.json" --sig "$IMG/manifest.json.sig")

log "metald killed mid-stream: the chunk in flight is fetched again by Range"
dirty
install_start cut "http://$HOST:8080/image" "${FILES[@]}" --state-file "$T/install.state"
wait_until 60 past_chunk 6 || fail "the install did not get to chunk 6"
metald_kill9
first_mib_zero || fail "the first MiB was written before the end"
sleep 1
metald_start "$SRV"
install_wait
[ $RC -eq 0 ] || { cat "$ALOG" >&2; fail "install across a metald restart exited $RC"; }
grep -q "fetching it again from its start" "$ALOG" || { cat "$ALOG" >&2; fail "no chunk was fetched again"; }
grep -q "install: .* bytes, .* KiB/s" "$ALOG" || fail "no progress lines"
cmp "$T/target" "$T/expected.img" || fail "the target differs from the raw image"
[ ! -e "$T/install.state" ] || fail "the state file outlived the install"

log "the agent killed mid-stream, then run again: it resumes"
dirty
install_start crash "http://$HOST:8080/image" "${FILES[@]}" --state-file "$T/install.state"
wait_until 60 past_chunk 10 || fail "the install did not get to chunk 10"
kill -9 "$AGENT_PID"
install_wait
first_mib_zero || fail "the first MiB of an interrupted install is not zero"
AT=$(state_next)
install_start resume "http://$HOST:8080/image" "${FILES[@]}" --state-file "$T/install.state"
install_wait
[ $RC -eq 0 ] || { cat "$ALOG" >&2; fail "the resumed install exited $RC"; }
grep -q "resumed at chunk $AT" "$ALOG" || { cat "$ALOG" >&2; fail "did not resume at chunk $AT"; }
cmp "$T/target" "$T/expected.img" || fail "the resumed target differs from the raw image"

log "the manifest over the agent API, a tampered chunk"
tc -n "$SRV" qdisc del dev vs0 root
mkdir -p "$ROOT/bad"
cp "$IMG"/* "$ROOT/bad/"
read -r BAD_OFF BAD_LEN BAD_FILE_OFF BAD_SIZE < <(sed -n 11p "$T/chunks.txt")     # chunk 10
printf '\x5a' | dd of="$ROOT/bad/disk" bs=1 seek=$((BAD_FILE_OFF + BAD_SIZE / 2)) conv=notrunc status=none
SESSION=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
printf '%s\n' "$SESSION" >"$T/session"
# a stand-in for metald's agent API: the two image routes, the session bearer required
ip netns exec "$SRV" python3 - "$IMG" "$SESSION" "$T/api.ready" "$T/api.log" <<'PY' &
import http.server, os, sys
img, session, ready, logf = sys.argv[1:5]
files = {"/v1/agent/image/manifest": "manifest.json", "/v1/agent/image/manifest.sig": "manifest.json.sig"}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == "Bearer " + session
        open(logf, "a").write("%s %s\n" % (self.path, "bearer" if ok else "no-bearer"))
        if not ok or self.path not in files:
            self.send_response(401 if not ok else 404); self.send_header("Content-Length", "0"); self.end_headers()
            return
        body = open(os.path.join(img, files[self.path]), "rb").read()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("10.88.0.1", 8081), H)
open(ready, "w").close()
s.serve_forever()
PY
PIDS+=($!)
wait_until 10 test -e "$T/api.ready" || fail "the agent API stand-in did not start"
dirty
install_start tampered "http://$HOST:8080/bad" --metald "http://$HOST:8081" --session-file "$T/session"
install_wait
[ $RC -eq 1 ] || { cat "$ALOG" >&2; fail "a tampered chunk: exit $RC, not 1"; }
grep -q "chunk 10 .*digest mismatch" "$ALOG" || { cat "$ALOG" >&2; fail "the failure does not name chunk 10"; }
[ "$(grep -c ' bearer$' "$T/api.log")" = 2 ] || fail "the manifest and signature were not fetched with the session"
! grep -q "$SESSION" "$ALOG" || fail "the session secret was logged"
first_mib_zero || fail "the first MiB of a failed install is not zero"
cmp -s -n "$BAD_LEN" <(tail -c +$((BAD_OFF + 1)) "$T/target") <(tail -c +$((BAD_OFF + 1)) "$T/dirty.img") ||
        fail "bytes of the tampered chunk reached the target"

log "a manifest digest metald did not announce: refused before anything is written"
dirty
install_start replay "http://$HOST:8080/image" "${FILES[@]}" --manifest-sha256 "$(printf '%064d' 0)"
install_wait
[ $RC -eq 1 ] || fail "a wrong manifest digest: exit $RC, not 1"
grep -q "not the 0000" "$ALOG" || { cat "$ALOG" >&2; fail "the refusal does not name the digest"; }
cmp -s "$T/target" "$T/dirty.img" || fail "a refused install wrote to the target"

log "$N_CHUNKS chunks, all cases passed"
metald_stop
