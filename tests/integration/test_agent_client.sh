#!/bin/bash
# metald-agent against a stand-in for metald's agent API (agent_mock.py) in a
# network namespace: registration and heartbeats, metald down at first, 503
# with Retry-After, a session ended by 401 (the agent reboots), reboot and
# poweroff instructions (a log event first), an install instruction refused
# with an event, an event refused with 409, giving up after --max-attempts,
# SIGTERM, and boot-parameter errors. The nonce and the session secret never
# appear in the agent's output.
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

# mock_start SCENARIO: a fresh mock on a fresh port; sets $URL, $MLOG, $SESSION.
mock_start() {
        PORT=$((PORT + 1))
        URL=http://127.0.0.1:$PORT
        MLOG=$T/mock-$1.log
        rm -f "$T/mock.ready"
        : >"$MLOG"
        ip netns exec "$NS" python3 "$MOCK" --port "$PORT" --log "$MLOG" --nonce="$NONCE" --mac "$MAC" --scenario "$1" \
                --session-file "$T/session-$1" --ready-file "$T/mock.ready" >>"$T/mock.stderr" 2>&1 &
        MOCK_PID=$!
        PIDS+=("$MOCK_PID")
        wait_until 10 test -e "$T/mock.ready" || fail "mock for $1 did not start"
        SESSION=$(cat "$T/session-$1")
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

log "install instruction: refused with install-failed, heartbeats go on"
mock_start install
agent_start install
wait_until 20 agent_says "instruction wait: failed: install failed" ||
        { cat "$ALOG" >&2; fail "no wait after install"; }
more_heartbeats() { [ "$(calls heartbeat)" -gt "$1" ]; }
wait_until 10 more_heartbeats "$(calls heartbeat)" || fail "no heartbeat after the install-failed event"
UNAVAILABLE='"event": "install-failed", "detail": "image installation is not available in this agent version"'
[ "$(count "$MLOG" "$UNAVAILABLE")" -eq 1 ] ||
        fail "not exactly one install-failed event"
agent_stop
check_clean
mock_stop

log "an event refused with 409 is dropped; the instruction is fetched again"
mock_start event409
agent_start event409
wait_until 20 agent_says "instruction wait: the event was refused" || { cat "$ALOG" >&2; fail "no new instruction"; }
wait_until 10 more_heartbeats "$(calls heartbeat)" || fail "no heartbeat after the refused event"
[ "$(calls events)" -eq 1 ] || fail "the refused event was sent again"
[ "$(calls instruction)" -eq 1 ] || fail "the instruction was not fetched once"
expect_says "HTTP 409: event install-failed is not allowed while the machine is registered; dropping"
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
