#!/bin/bash
# Tail latency right after login bursts: USERS chat users exchange RATE msgs/s (open loop) for DURATION s while, every
# BURST_EVERY s, BURST churn users log in at once (CONCURRENCY logins in flight, a reconnect storm), stay SESSION s and
# log out. The soak scenario reports p99, p99.9 and the maximum of every SAMPLE-s window, so a pause after a burst
# shows in the windows that follow it. Each server of SERVERS (starling, ejabberd, prosody; the configurations of
# bench/servers/) runs alone on the machine. Results: bench/results/tail-<UTC timestamp>/<server>.jsonl and a table
# (summary.txt) of the worst window's p99/p99.9 per server, before the first burst and after.
#
#   bench/tail.sh            env: SERVERS="starling"  RATE=1000 USERS=1000 BURST=3500 BURST_EVERY=40 SESSION=20
#                                 DURATION=170 SAMPLE=2 CONCURRENCY=50 PORT=15800 STARLING_BUILD=native|jit
#                                 STARLING_BIN=DIR: use the build in DIR (from `bench/servers/starling.sh build X`: X/bin)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SERVERS=${SERVERS:-starling}
RATE=${RATE:-1000}; USERS=${USERS:-1000}; BURST=${BURST:-3500}; BURST_EVERY=${BURST_EVERY:-40}; SESSION=${SESSION:-20}
DURATION=${DURATION:-170}; SAMPLE=${SAMPLE:-2}; CONCURRENCY=${CONCURRENCY:-50}; PORT=${PORT:-15800}
export STARLING_BUILD=${STARLING_BUILD:-native}
DOMAIN=tail.local
. "$HERE/run_lib.sh"
bench_init tail

build_loadgen
for s in $SERVERS; do
    dir=$WORK/$s
    start_server "$s" "$dir" $(( USERS + BURST ))
    pids=$("$HERE/servers/$s.sh" pids "$dir" | sed 's/^/--server-pid /' | tr '\n' ' ')
    log "$s: $RATE msgs/s over $USERS users, a burst of $BURST logins every ${BURST_EVERY}s, ${DURATION}s"
    poller=""
    if [ "$s" = starling ]; then
        # The collector's own account, once a second (`starling status`): which windows had a pause of the server.
        exe="$dir/bin/starling"; [ "$STARLING_BUILD" = jit ] && exe="dotnet $dir/bin/starling.dll"
        ( t=0; while sleep 1; do t=$((t + 1))
              line=$(cd "$dir" && $exe status --DataDirectory="$dir/data" 2>/dev/null | grep -E ' (gc|allocated): ' | tr '\n' ' ') || continue
              echo "$t $line"; done > "$RESULTS/starling-gc.txt" ) &
        poller=$!
    fi
    # Warm-up 0: the RSS verdict of the soak does not apply here; the windows are what this run is for.
    timeout $(( DURATION + 300 )) dotnet "$LOADGEN" soak --port "$PORT" --domain "$DOMAIN" --users "$USERS" \
        --rate "$RATE" --duration "$DURATION" --warmup 0 --sample "$SAMPLE" --churn-users "$BURST" \
        --burst-logins "$BURST" --burst-every "$BURST_EVERY" --session-seconds "$SESSION" --concurrency "$CONCURRENCY" \
        --max-rss-growth 1000 $pids --label "$s" --json "$RESULTS/$s.jsonl" 2> "$RESULTS/$s-loadgen.log" \
        || log "$s: the run exited $? (see $s-loadgen.log)"
    [ -n "$poller" ] && kill "$poller" 2>/dev/null
    "$HERE/servers/$s.sh" stop "$dir" >&2
    CURRENT=""
    cp "$dir"/*.log "$RESULTS/" 2>/dev/null || true
done

/usr/bin/env python3 - "$RESULTS" "$BURST_EVERY" $SERVERS <<'PY' | tee "$RESULTS/summary.txt"
import json, sys, os
results, every, servers = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
print(f"{'server':10} {'phase':18} {'windows':>7} {'worst p99 ms':>12} {'worst p99.9 ms':>14} {'worst max ms':>12} {'lost':>6} {'logins':>7} {'failed':>6}")
for s in servers:
    path = os.path.join(results, s + ".jsonl")
    if not os.path.exists(path):
        print(f"{s:10} no result"); continue
    lines = [json.loads(l) for l in open(path) if l.strip()]
    wins = [l for l in lines if l.get("scenario") == "soak-window"]
    phases = {"before bursts": [w for w in wins if w["t_end_s"] <= every],
              "bursts and after": [w for w in wins if w["t_end_s"] > every]}
    for name, ws in phases.items():
        if not ws: continue
        print(f"{s:10} {name:18} {len(ws):7d} {max(w['p99_ms'] for w in ws):12.2f} {max(w['p999_ms'] for w in ws):14.2f} "
              f"{max(w['max_ms'] for w in ws):12.2f} {sum(w['lost'] for w in ws):6d} {sum(w['logins'] for w in ws):7d} {sum(w['login_failures'] for w in ws):6d}")
PY
log "results in $RESULTS"
