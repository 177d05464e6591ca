#!/bin/bash
# metald-agent against a stand-in for metald's agent API (agent_mock.py) in a
# network namespace: registration and heartbeats, metald down at first, 503
# with Retry-After, a session ended by 401 (the agent reboots), reboot and
# poweroff instructions (a log event first), an install instruction carried
# out (a signed image built with metald image sign --build, streamed by Range
# to the disk the rule picks in a fake sysroot, with install-started,
# install-progress, install-succeeded and heartbeats throughout, then the
# reboot), a tampered chunk, no trusted keys, no usable disk, an event
# refused with 409, giving up after --max-attempts, SIGTERM, and
# boot-parameter errors. The nonce and the session secret never appear in
# the agent's output.
. "$(dirname "$0")/lib.sh"
need python3

AGENT="$METALD_BUILD/metald-agent"
MOCK="$TOP/tests/integration/agent_mock.py"
[ -x "$AGENT" ] || fail "$AGENT is not built"
NS=$(ns_add agent)
MAC=52:54:00:12:34:56
NONCE=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
PORT=18080
AGENT_PID=""
MOCK_PID=""

# mock_start SCENARIO [MOCK ARGS...]: a fresh mock on a fresh port; sets $URL, $MLOG, $SESSION.
mock_start() {
        local scenario=$1; shift
        PORT=$((PORT + 1))
        URL=http://127.0.0.1:$PORT
        MLOG=$T/mock-$scenario-$PORT.log
        rm -f "$T/mock.ready"
        : >"$MLOG"
        ip netns exec "$NS" python3 "$MOCK" --port "$PORT" --log "$MLOG" --nonce="$NONCE" --mac "$MAC" \
                --scenario "$scenario" --session-file "$T/session-$scenario" --ready-file "$T/mock.ready" "$@" \
                >>"$T/mock.stderr" 2>&1 &
        MOCK_PID=$!
        PIDS+=("$MOCK_PID")
        wait_until 10 test -e "$T/mock.ready" || fail "mock for $1 did not start"
        SESSION=$(cat "$T/session-$scenario")
}

mock_stop() {
        if [ -n "$MOCK_PID" ]; then
                kill "$MOCK_PID" 2>/dev/null || true
                wait "$MOCK_PID" 2>/dev/null || true
        fi
        MOCK_PID=""
        if grep -q '"violation"' "$MLOG"; then
                grep '"violation"' "$MLOG" >&2
                fail "the agent broke the API contract"
        fi
}

# agent_start NAME ARGS...: the agent in the background, boot parameters from a command line file.
agent_start() {
        local name=$1; shift
        ALOG=$T/agent-$name.log
        printf 'BOOT_IMAGE=/vmlinuz console=ttyS0 metald.url=%s metald.mac=%s metald.nonce=%s quiet\n' \
                "$URL" "$MAC" "$NONCE" >"$T/cmdline"
        ip netns exec "$NS" "$AGENT" run --cmdline "$T/cmdline" --reboot-cmd "$T/action reboot" \
                --poweroff-cmd "$T/action poweroff" "$@" >"$ALOG" 2>&1 &
        AGENT_PID=$!
        PIDS+=("$AGENT_PID")
}

# agent_wait SECONDS: waits for the agent to exit; its exit status goes to $RC.
agent_wait() {
        local end=$((SECONDS + $1))
        while kill -0 "$AGENT_PID" 2>/dev/null; do
                if [ $SECONDS -ge $end ]; then
                        kill -9 "$AGENT_PID"
                        log "--- agent ---"
                        cat "$ALOG" >&2
                        fail "the agent did not exit within $1 s"
                fi
                sleep 0.2
        done
        RC=0
        wait "$AGENT_PID" || RC=$?
        AGENT_PID=""
}

agent_stop() {
        kill -TERM "$AGENT_PID"
        agent_wait 40
        [ "$RC" = 0 ] || fail "the agent exited with $RC on SIGTERM"
}

agent_says() { grep -q -- "$1" "$ALOG" 2>/dev/null; }
expect_says() { agent_says "$1" || { cat "$ALOG" >&2; fail "the agent did not say: $1"; }; }
count() { grep -c -- "$2" "$1" || true; }
# calls PATH: how many requests the mock saw on PATH
calls() { count "$MLOG" "\"path\": \"/v1/agent/$1\""; }

check_clean() {
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$ALOG"; then
                cat "$ALOG" >&2
                fail "sanitizer report in $ALOG"
        fi
        grep -qF -- "$NONCE" "$ALOG" && fail "the nonce appears in $ALOG"
        grep -qF -- "$SESSION" "$ALOG" && fail "the session secret appears in $ALOG"
        return 0
}

# The reboot/poweroff command: records what the mock had seen when it ran.
cat >"$T/action" <<EOF
#!/bin/sh
cp "\$MLOG_NOW" "$T/mock-at-\$1.log" 2>/dev/null
echo "\$1" >"$T/action-\$1"
EOF
chmod +x "$T/action"

log "boot parameter errors exit 2 with one line and never echo the nonce"
expect_usage() {
        local rc=0
        "$AGENT" run "$@" >"$T/usage.out" 2>&1 || rc=$?
        [ $rc -eq 2 ] || fail "exit $rc, not 2, for: $*"
        [ "$(wc -l <"$T/usage.out")" -le 2 ] || fail "more than one error line for: $*"
        grep -qF -- "$NONCE" "$T/usage.out" && fail "the nonce was echoed"
        return 0
}
printf 'quiet\n' >"$T/empty-cmdline"
expect_usage --cmdline "$T/empty-cmdline"
grep -q "metald.url= is not on the kernel command line" "$T/usage.out" || fail "no missing-url message"
expect_usage --cmdline "$T/empty-cmdline" --url http://h:1 --mac $MAC --nonce="${NONCE}x"
grep -q "metald.nonce must be 22 base64url characters" "$T/usage.out" || fail "no nonce message"
expect_usage --cmdline "$T/empty-cmdline" --url https://h:1 --mac $MAC --nonce="$NONCE"
grep -q "metald.url must be http://HOST\[:PORT\]" "$T/usage.out" || fail "no url message"
expect_usage --cmdline "$T/empty-cmdline" --url http://h:1 --mac 52:54:00 --nonce="$NONCE"
expect_usage --cmdline "$T/nonexistent"
expect_usage --bogus
"$AGENT" version | grep -q '^metald-agent ' || fail "version"
"$AGENT" inventory --sysroot / |
        python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["cpu"]["count"] > 0' ||
        fail "inventory of this machine"

log "gives up after --max-attempts when metald never answers"
URL=http://127.0.0.1:9
SESSION=none
agent_start unreachable --max-attempts 3
agent_wait 30
[ "$RC" = 1 ] || fail "exit $RC after --max-attempts, not 1"
[ "$(count "$ALOG" 'retrying in')" -eq 2 ] || fail "not 2 retries before giving up"
expect_says "giving up after 3 attempts"
check_clean

log "registration and heartbeats; instructions printed once; SIGTERM"
mock_start normal
agent_start normal
wait_until 20 grep -q "approved" "$ALOG" || { cat "$ALOG" >&2; fail "no approval seen"; }
expect_says "metald-agent: registered as m-525400123456 (state registered)"
[ "$(count "$ALOG" 'metald-agent: instruction wait: waiting for approval')" -eq 1 ] ||
        fail "the wait instruction was not printed exactly once"
expect_says "metald-agent: instruction wait: approved"
[ "$(calls register)" -eq 1 ] || fail "registered more than once"
[ "$(calls heartbeat)" -ge 3 ] || fail "fewer than 3 heartbeats"
agent_stop
expect_says "stopping on a termination signal"
check_clean
mock_stop

log "metald down at first: retries with backoff, then registers"
PORT=$((PORT + 1))
URL=http://127.0.0.1:$((PORT + 1))
SESSION=none
agent_start down
sleep 3
kill -0 "$AGENT_PID" || fail "the agent gave up while metald was down"
mock_start down
wait_until 30 agent_says "registered as" || { cat "$ALOG" >&2; fail "no registration after metald came up"; }
[ "$(count "$ALOG" 'register: .*retrying in')" -ge 2 ] || fail "fewer than 2 retries while metald was down"
agent_stop
check_clean
mock_stop

log "503 with Retry-After: 2"
mock_start retry503
agent_start retry503
wait_until 20 agent_says "registered as" || { cat "$ALOG" >&2; fail "no registration after 503s"; }
python3 - "$MLOG" <<'EOF' || fail "Retry-After was not honoured"
import json, sys
t = [e["t"] for e in map(json.loads, open(sys.argv[1])) if e["path"] == "/v1/agent/register"]
assert len(t) == 3, t
gaps = [b - a for a, b in zip(t, t[1:])]
assert all(2.0 <= g <= 3.5 for g in gaps), gaps
EOF
agent_stop
check_clean
mock_stop

log "401 on a heartbeat: no more calls, reboot after heartbeat_seconds"
mock_start hb401
export MLOG_NOW=$MLOG
agent_start hb401
agent_wait 30
[ "$RC" = 0 ] || { cat "$ALOG" >&2; fail "exit $RC after the reboot command, not 0"; }
[ -e "$T/action-reboot" ] || fail "the reboot command did not run"
[ "$(calls heartbeat)" -eq 3 ] || fail "calls after the 401"
[ "$(calls events)" -eq 0 ] || fail "an event after the 401"
expect_says "metald no longer accepts this session"
expect_says "metald-agent: rebooting: running $T/action reboot"
check_clean
mock_stop
rm -f "$T/action-reboot"

log "reboot instruction: a log event, then the reboot command"
mock_start reboot
export MLOG_NOW=$MLOG
agent_start reboot
agent_wait 30
[ "$RC" = 0 ] || { cat "$ALOG" >&2; fail "exit $RC after reboot, not 0"; }
[ -e "$T/action-reboot" ] || fail "the reboot command did not run"
grep -q '"event": "log", "detail": "rebooting as instructed: boot the installed system"' "$T/mock-at-reboot.log" ||
        fail "no log event before the reboot command"
expect_says "metald-agent: instruction reboot: boot the installed system"
check_clean
mock_stop

log "poweroff instruction at registration"
mock_start poweroff
export MLOG_NOW=$MLOG
agent_start poweroff
agent_wait 30
[ "$RC" = 0 ] || { cat "$ALOG" >&2; fail "exit $RC after poweroff, not 0"; }
[ -e "$T/action-poweroff" ] || fail "the poweroff command did not run"
grep -q '"event": "log", "detail": "powering off as instructed: retired"' "$T/mock-at-poweroff.log" ||
        fail "no log event before the poweroff command"
[ "$(calls heartbeat)" -eq 0 ] || fail "heartbeats before powering off"
check_clean
mock_stop

log "a signed test image, a fake sysroot with three disks"
SYS=$T/sysroot
DEV=$T/dev
mkdir -p "$T/src" "$DEV" "$T/keys" "$T/nokeys"
(cd "$T" && "$METALD" image keygen --out site >/dev/null) || fail "image keygen"
cp "$T/site.pub" "$T/keys/"
case "$(uname -m)" in aarch64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;; esac
python3 - "$T" "$SYS" "$DEV" <<'PY'
import os, struct, sys
tmp, sysroot, dev = sys.argv[1:4]
MIB = 1 << 20
raw = bytearray(48 * MIB)
for off, length in [(0, MIB), (4 * MIB, 8 * MIB), (20 * MIB, 16 * MIB), (47 * MIB, MIB)]:
    raw[off:off + length] = os.urandom(length)
# an MBR: a Linux partition and the configuration partition (type 0xda) at 40 MiB, 1 MiB long
raw[446:510] = bytes(64)
raw[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 38 * 2048)
raw[462:478] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0xda, b"\0\0\0", 40 * 2048, 2048)
raw[510:512] = b"\x55\xaa"
raw[40 * MIB:41 * MIB] = bytes(MIB)
open(os.path.join(tmp, "src", "disk"), "wb").write(raw)
open(os.path.join(tmp, "src", "kernel"), "wb").write(b"kernel bytes")
open(os.path.join(tmp, "src", "initrd"), "wb").write(b"initrd bytes")
open(os.path.join(tmp, "raw.img"), "wb").write(raw)
open(os.path.join(tmp, "dirty.img"), "wb").write(b"\xaa" * len(raw))
def put(rel, text):
    p = os.path.join(sysroot, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "w").write(text)
# vda is the largest fixed disk but its partition holds /; sdc is larger still but removable
for name, size, rot, rem, devno in [("vda", 128 * MIB, 1, 0, "252:0"), ("vdb", len(raw), 1, 0, "252:16"),
                                    ("sdc", 256 * MIB, 0, 1, "8:32")]:
    os.makedirs(os.path.join(sysroot, "sys/block", name, "device"), exist_ok=True)
    put(f"sys/block/{name}/size", f"{size // 512}\n")
    put(f"sys/block/{name}/queue/rotational", f"{rot}\n")
    put(f"sys/block/{name}/removable", f"{rem}\n")
    put(f"sys/block/{name}/dev", devno + "\n")
put("sys/block/vda/vda1/partition", "1\n")
put("sys/block/vda/vda1/dev", "252:1\n")
put("proc/self/mountinfo", "25 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
                           "26 25 0:5 / /dev rw - devtmpfs udev rw\n")
for name in ("vda", "sdc"):
    open(os.path.join(dev, name), "wb").write(b"not to be written\n")
PY
"$METALD" image sign "$T/src" --key "$T/site.key" --build --name test-image --version 3 --arch "$ARCH" \
        --chunk-size 1M --out "$T/img" >"$T/sign.out" 2>&1 || { cat "$T/sign.out" >&2; fail "image sign --build"; }
# what the disk must hold afterwards: the raw image, and the configuration record as docs/IMAGES.md lays it out
python3 - "$T" <<'PY' || fail "the manifest has no configuration range"
import hashlib, json, os, struct, sys
tmp = sys.argv[1]
m = json.load(open(os.path.join(tmp, "img", "manifest.json")))
cfg = m["artifacts"]["disk"]["config"]
assert cfg == {"offset": 40 << 20, "length": 1 << 20}, cfg
raw = bytearray(open(os.path.join(tmp, "raw.img"), "rb").read())
j = json.dumps({"hostname": "worker-7"}, separators=(",", ":")).encode()
rec = b"METALD-CFG/1\n\0\0\0" + struct.pack("<II", len(j), 0) + hashlib.sha256(j).digest() + bytes(8) + j
raw[cfg["offset"]:cfg["offset"] + len(rec)] = rec
open(os.path.join(tmp, "expected.img"), "wb").write(raw)
chunks = m["artifacts"]["disk"]["chunks"]
print(sum(c["size"] for c in chunks[:10]), chunks[10]["size"], chunks[10]["offset"], chunks[10]["length"],
      file=open(os.path.join(tmp, "chunk10"), "w"))
PY
INSTALL_ARGS=(--sysroot "$SYS" --dev-dir "$DEV" --keys "$T/keys" --progress 1)
first_mib_zero() { cmp -s -n $((1 << 20)) "$DEV/vdb" /dev/zero; }
others_untouched() {
        for d in vda sdc; do
                [ "$(cat "$DEV/$d")" = "not to be written" ] || fail "$DEV/$d was written"
        done
}
# events_are LOG PYTHON-EXPR: the event names the mock took, in order, as a list e
events_are() {
        python3 - "$1" "$2" <<'PY' || { grep -E '"/v1/agent/(events|heartbeat)"' "$1" | cut -c1-300 >&2; fail "events: $2"; }
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
e = [x["body"]["event"] for x in log if x["path"] == "/v1/agent/events" and x["status"] == 200]
calls = [x["path"].rsplit("/", 1)[1] if x["path"] != "/v1/agent/events" else x["body"]["event"] for x in log
         if x["path"].startswith("/v1/agent/") and x["status"] == 200]
assert eval(sys.argv[2]), e
PY
}

log "install instruction: the image goes to the disk the rule picks; events in order; heartbeats throughout"
cp "$T/dirty.img" "$DEV/vdb"
mock_start install --image-dir "$T/img" --chunk-delay 0.2
export MLOG_NOW=$MLOG
agent_start install "${INSTALL_ARGS[@]}"
agent_wait 120
[ "$RC" = 0 ] || { cat "$ALOG" >&2; fail "exit $RC after the install and reboot, not 0"; }
[ -e "$T/action-reboot" ] || { cat "$ALOG" >&2; fail "no reboot after the install"; }
cmp "$DEV/vdb" "$T/expected.img" || fail "the disk differs from the raw image with its configuration record"
others_untouched
events_are "$MLOG" 'e[0] == "install-started" and e.count("install-progress") >= 1 and e[-2:] == ["install-succeeded", "log"] and set(e[1:-2]) == {"install-progress"}'
# heartbeats went on while the image streamed (the install runs beside the loop)
events_are "$MLOG" 'calls[calls.index("install-started"):calls.index("install-succeeded")].count("heartbeat") >= 2'
grep -qF '"event": "install-started", "detail": "installing test-image version 3, disk rule \"largest\""' "$MLOG" ||
        fail "install-started does not name the image and rule"
grep -qE '"event": "install-progress", "detail": "[0-9.]+ [KM]iB of [0-9.]+ MiB, [0-9.]+ [KM]iB/s(, ETA [0-9]+ s)?", "progress": [0-9]+' "$MLOG" ||
        fail "no install-progress with bytes, rate and percent"
grep -q '"event": "install-succeeded", "detail": "installed test-image version 3 to '"$DEV"'/vdb' "$MLOG" ||
        fail "install-succeeded does not name the target"
[ "$(count "$MLOG" '"path": "/v1/agent/image/manifest", "status": 200')" -eq 1 ] || fail "the manifest was not fetched once"
[ "$(count "$MLOG" '"status": 206, "range": "bytes=')" -ge 20 ] || fail "the disk was not fetched by Range"
expect_says "metald-agent: installing test-image version 3 from http://127.0.0.1:$PORT/_metald/images/test-image/3/disk to $DEV/vdb"
check_clean
mock_stop
rm -f "$T/action-reboot"

log "a tampered chunk: install-failed names it, nothing of it is written, the disk does not boot"
cp -r "$T/img" "$T/bad"
read -r BAD_FILE_OFF BAD_SIZE BAD_OFF BAD_LEN <"$T/chunk10"
printf '\x5a' | dd of="$T/bad/disk" bs=1 seek=$((BAD_FILE_OFF + BAD_SIZE / 2)) conv=notrunc status=none
cp "$T/dirty.img" "$DEV/vdb"
mock_start install --image-dir "$T/bad"
agent_start tampered "${INSTALL_ARGS[@]}"
wait_until 60 agent_says "instruction wait: failed: install failed" || { cat "$ALOG" >&2; fail "no wait after install-failed"; }
agent_stop
grep -qF '"event": "install-failed", "detail": "chunk 10 (disk file bytes '"$BAD_FILE_OFF+$BAD_SIZE"'): digest mismatch, not written"' "$MLOG" ||
        { grep install-failed "$MLOG" >&2; fail "install-failed does not name chunk 10"; }
events_are "$MLOG" 'e[0] == "install-started" and e[-1] == "install-failed" and "install-succeeded" not in e'
first_mib_zero || fail "the first MiB of a failed install is not zero"
cmp -s -n "$BAD_LEN" <(tail -c +$((BAD_OFF + 1)) "$DEV/vdb") <(tail -c +$((BAD_OFF + 1)) "$T/dirty.img") ||
        fail "bytes of the tampered chunk reached the disk"
others_untouched
check_clean
mock_stop

log "no trusted keys: install-failed, the disk untouched"
cp "$T/dirty.img" "$DEV/vdb"
mock_start install --image-dir "$T/img"
agent_start nokeys "${INSTALL_ARGS[@]}" --keys "$T/nokeys"
wait_until 30 agent_says "instruction wait: failed: install failed" || { cat "$ALOG" >&2; fail "no wait after install-failed"; }
agent_stop
grep -qF '"event": "install-failed", "detail": "no trusted image keys in the enrollment environment' "$MLOG" ||
        { grep install-failed "$MLOG" >&2; fail "install-failed does not say the keys are missing"; }
[ "$(calls image/manifest)" -eq 0 ] || fail "the manifest was fetched without keys to check it"
cmp -s "$DEV/vdb" "$T/dirty.img" || fail "the disk was written"
check_clean
mock_stop

log "no disk the rule allows: install-failed names the rule and the disks seen"
mock_start install --image-dir "$T/img" --disk ssd
agent_start norule "${INSTALL_ARGS[@]}"
wait_until 30 agent_says "instruction wait: failed: install failed" || { cat "$ALOG" >&2; fail "no wait after install-failed"; }
agent_stop
grep -qF '"detail": "disk rule \"ssd\": no usable disk; disks seen: sdc 256 MiB ssd (removable, and the profile does not allow removable disks), vda 128 MiB hdd (vda1 is mounted on /), vdb 48 MiB hdd"' "$MLOG" ||
        { grep install-failed "$MLOG" >&2; fail "install-failed does not name the rule and the disks"; }
cmp -s "$DEV/vdb" "$T/dirty.img" || fail "the disk was written"
others_untouched
check_clean
mock_stop

log "an event refused with 409 is dropped; the instruction is fetched again"
more_heartbeats() { [ "$(calls heartbeat)" -gt "$1" ]; }
mock_start event409
agent_start event409 "${INSTALL_ARGS[@]}"
wait_until 20 agent_says "instruction wait: the event was refused" || { cat "$ALOG" >&2; fail "no new instruction"; }
wait_until 10 more_heartbeats "$(calls heartbeat)" || fail "no heartbeat after the refused event"
[ "$(calls events)" -eq 1 ] || fail "the refused event was sent again"
[ "$(calls instruction)" -eq 1 ] || fail "the instruction was not fetched once"
expect_says "HTTP 409: event install-started is not allowed while the machine is registered; dropping"
[ "$(calls image/manifest)" -eq 0 ] || fail "the install began although metald refused install-started"
agent_stop
check_clean
mock_stop

log "a failing reboot command is an error"
mock_start poweroff
agent_start failing --poweroff-cmd "exit 3"
agent_wait 30
[ "$RC" = 1 ] || fail "exit $RC when the poweroff command failed, not 1"
expect_says "failed (exit status 3)"
check_clean
mock_stop

log "ok"
