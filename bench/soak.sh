#!/bin/bash
# The soak: Starling (native build, the benchmark configuration of bench/servers/starling.sh) under a steady chat
# load with logins and logouts churning, for an hour by default. Passes when the server's peak RSS over the last five
# minutes is within MAX_GROWTH % of its peak over the five minutes after the warm-up (RSS read every second), no
# message was lost, no login failed, no connection dropped and the server logged no warning or error. Results (JSON
# lines, the server log, a one-line verdict) go to bench/results/soak-<UTC timestamp>/.
#
#   bench/soak.sh            env (defaults = the published run):
#     DURATION=3600  WARMUP=300  SAMPLE=60     seconds: whole run, RSS baseline time, window length
#     RATE=8000                                chat msgs/s: half the highest passing chat rate of this machine (16,000 on
#                                              the day of the published run; see docs/benchmarks.md)
#     USERS=1000                               chat users, online all along
#     CHURN_USERS=2000 CHURN_RATE=20 SESSION=30   churn users log in at CHURN_RATE/s and stay SESSION s
#     MAX_GROWTH=10  PORT=15700  STARLING_BUILD=native|jit
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DURATION=${DURATION:-3600}; WARMUP=${WARMUP:-300}; SAMPLE=${SAMPLE:-60}
RATE=${RATE:-8000}; USERS=${USERS:-1000}
CHURN_USERS=${CHURN_USERS:-2000}; CHURN_RATE=${CHURN_RATE:-20}; SESSION=${SESSION:-30}
MAX_GROWTH=${MAX_GROWTH:-10}; PORT=${PORT:-15700}
export STARLING_BUILD=${STARLING_BUILD:-native}
DOMAIN=soak.local
RESULTS=${RESULTS:-$REPO/bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS"; RESULTS=$(cd "$RESULTS" && pwd)
WORK=$(mktemp -d /tmp/starling-soak.XXXXXX)
DIR=$WORK/starling
LOADGEN=$REPO/bench/Starling.Load/bin/Release/net10.0/starling-load.dll
T0=$SECONDS
log() { printf '[soak %5ds] %s\n' "$(( SECONDS - T0 ))" "$*" >&2; }
fail() { echo "FAIL soak: $*" | tee "$RESULTS/verdict.txt"; exit 1; }
cleanup() {
    "$HERE/servers/starling.sh" stop "$DIR" >/dev/null 2>&1 || true
    [ -f "$DIR/starling.log" ] && cp "$DIR/starling.log" "$RESULTS/starling.log"
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

log "building the load generator and Starling ($STARLING_BUILD)"
timeout 600 dotnet build -c Release "$REPO/bench/Starling.Load" --nologo -v quiet >"$WORK/loadgen-build.log" 2>&1 \
    || { tail -20 "$WORK/loadgen-build.log" >&2; fail "load generator build failed"; }
"$HERE/servers/starling.sh" build "$DIR" >&2 || fail "Starling build failed"
"$HERE/servers/starling.sh" provision "$DIR" "$DOMAIN" $(( USERS + CHURN_USERS )) >&2 || fail "provisioning failed"
"$HERE/servers/starling.sh" start "$DIR" "$PORT" "$DOMAIN" >&2 || fail "Starling did not start"
PID=$("$HERE/servers/starling.sh" pids "$DIR" | head -1)
log "server pid $PID; soak: $RATE msgs/s over $USERS users, $CHURN_RATE logins/s of $SESSION s, ${DURATION}s (warm-up ${WARMUP}s)"

J=$RESULTS/soak.jsonl
timeout $(( DURATION + 600 )) dotnet "$LOADGEN" soak --port "$PORT" --domain "$DOMAIN" --users "$USERS" \
    --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --sample "$SAMPLE" \
    --churn-users "$CHURN_USERS" --churn-rate "$CHURN_RATE" --session-seconds "$SESSION" \
    --max-rss-growth "$MAX_GROWTH" --server-pid "$PID" --json "$J" 2> >(tee "$RESULTS/loadgen.log" >&2) \
    || fail "soak run exited $?"
kill -0 "$PID" 2>/dev/null || fail "Starling died during the run"
"$HERE/servers/starling.sh" stop "$DIR" >&2
cp "$DIR/starling.log" "$RESULTS/starling.log"

# The server runs with Log:Level=Warning: any line it wrote (besides start-up) is a warning or worse.
verdict=$(/usr/bin/env python3 - "$J" "$RESULTS/starling.log" <<'PY'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
soak = [l for l in lines if l.get("scenario") == "soak"]
problems = []
if not soak:
    problems.append("no soak result")
else:
    s = soak[-1]
    if not s.get("pass"): problems.append(s.get("fail_reasons", "failed"))
log = [l.rstrip("\n") for l in open(sys.argv[2], errors="replace")]
bad = [l for l in log if re.search(r"\b(warn|fail|crit|error)\b", l, re.I)]
if bad: problems.append(f"{len(bad)} warning/error lines in the server log, first: {bad[0][:200]}")
if soak:
    s = soak[-1]
    summary = (f"{s['sent']} sent, {s['lost']} lost, {s['logins']} logins ({s['login_failures']} failed), "
               f"RSS {s.get('rss_after_warmup_mb', 0):.1f} MiB after warm-up -> {s.get('rss_end_mb', 0):.1f} MiB at the end "
               f"({s.get('rss_growth_pct', 0):+.1f} %), worst window p99 {s['p99_ms_worst_window']:.2f} ms")
else:
    summary = ""
print(("FAIL soak: " + "; ".join(problems) + (" | " + summary if summary else "")) if problems else "PASS soak: " + summary)
PY
)
echo "$verdict" | tee "$RESULTS/verdict.txt"
log "results in $RESULTS"
case "$verdict" in PASS*) exit 0 ;; *) exit 1 ;; esac
