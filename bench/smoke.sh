#!/bin/bash
# ~1-minute benchmark smoke test (for CI): builds the load generator and Starling (JIT build by
# default; STARLING_BUILD=native for the shipped one), starts Starling on loopback with 50
# provisioned users, runs `login` (50 users) and a 5 s `chat` at 200 msgs/s, and fails on any
# login failure, error, lost message or dropped connection. Prints exactly one line starting
# with PASS or FAIL on stdout; details go to stderr.
#
#   bench/smoke.sh            env: SMOKE_PORT (default 15600), STARLING_BUILD (jit|native, default jit)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PORT=${SMOKE_PORT:-15600}
DOMAIN=smoke.local
USERS=50
export STARLING_BUILD=${STARLING_BUILD:-jit}
T0=$SECONDS
WORK=$(mktemp -d /tmp/starling-smoke.XXXXXX)
DIR=$WORK/starling
LOADGEN=$REPO/bench/Starling.Load/bin/Release/net10.0/starling-load.dll

fail() {
    echo "FAIL bench smoke: $* ($(( SECONDS - T0 )) s)"
    exit 1
}
cleanup() {
    "$HERE/servers/starling.sh" stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true   # soft limit only: the server script raises its own

echo "smoke: building the load generator and Starling ($STARLING_BUILD)" >&2
timeout 600 dotnet build -c Release "$REPO/bench/Starling.Load" --nologo -v quiet >"$WORK/loadgen-build.log" 2>&1 \
    || { tail -20 "$WORK/loadgen-build.log" >&2; fail "load generator build failed"; }
"$HERE/servers/starling.sh" build "$DIR" >&2 || fail "Starling build failed"
"$HERE/servers/starling.sh" provision "$DIR" "$DOMAIN" "$USERS" >&2 || fail "provisioning failed"
"$HERE/servers/starling.sh" start "$DIR" "$PORT" "$DOMAIN" >&2 || fail "Starling did not start"
PID=$("$HERE/servers/starling.sh" pids "$DIR" | head -1)

J=$WORK/results.jsonl
timeout 120 dotnet "$LOADGEN" login --port "$PORT" --domain "$DOMAIN" --users "$USERS" --concurrency 10 \
    --server-pid "$PID" --json "$J" >&2 || fail "login run exited $?"
timeout 120 dotnet "$LOADGEN" chat --port "$PORT" --domain "$DOMAIN" --users "$USERS" --rate 200 \
    --duration 5 --warmup 1 --drain 2 --server-pid "$PID" --json "$J" >&2 || fail "chat run exited $?"
kill -0 "$PID" 2>/dev/null || fail "Starling died during the run"

# Check the JSON lines: a login line with no failures, a chat line with no loss, errors or drops.
verdict=$(/usr/bin/env python3 - "$J" "$USERS" <<'PY'
import json, sys
path, users = sys.argv[1], int(sys.argv[2])
lines = [json.loads(l) for l in open(path) if l.strip()]
login = [l for l in lines if l.get("scenario") == "login"]
chat = [l for l in lines if l.get("scenario") == "chat"]
problems = []
if not login: problems.append("no login result")
for l in login:
    if l.get("failed", 1) != 0 or l.get("logged_in") != users: problems.append(f"login: {l.get('logged_in')}/{users} logged in, failures {l.get('failures')}")
if not chat: problems.append("no chat result")
for c in chat:
    if c.get("lost", 1) != 0: problems.append(f"chat: {c.get('lost')} lost")
    if c.get("errors"): problems.append(f"chat: errors {c.get('errors')}")
    if c.get("dropped_connections", 1) != 0: problems.append(f"chat: {c.get('dropped_connections')} dropped connections")
    if c.get("sent", 0) == 0 or c.get("received") != c.get("sent"): problems.append(f"chat: received {c.get('received')} of {c.get('sent')}")
if problems:
    print("FAIL " + "; ".join(problems))
else:
    l, c = login[0], chat[0]
    print(f"OK login {l['logged_in']}/{users} ({l['logins_per_s']:.0f}/s), chat {c['received']}/{c['sent']} delivered at {c['rate_target']:.0f} msgs/s, p99 {c['p99_ms']:.2f} ms, 0 lost")
PY
) || fail "could not read the results"
case "$verdict" in
    OK*) echo "PASS bench smoke: ${verdict#OK } ($(( SECONDS - T0 )) s)" ;;
    *) fail "${verdict#FAIL }" ;;
esac
