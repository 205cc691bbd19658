#!/bin/bash
# Roster fan-out with real subscriptions (issue #14): for each server of SERVERS, alone on the machine (the
# configurations of bench/servers/): start it, create USERS accounts, approve CONTACTS contacts per user through the
# protocol once (`starling-load fanout --subscribe --provision-only`: all users online, a ring of pairs subscribing
# both ways, RFC 6121 §3.1; a sampled roster get must show subscription='both'), then measure the fan-out REPEATS
# times (`fanout`: all users log in and send initial presence; presences received per second from the first login to
# the last presence). Results: bench/results/fanout-<UTC timestamp>/<server>.jsonl, the loadgen's stderr and the
# server's log next to them, facts.txt (commit, machine, load average before and after) and summary.txt (median
# presences/s per server and the ratio of Starling to the better reference server).
#
#   bench/fanout.sh          env: SERVERS="starling prosody ejabberd" USERS=500 CONTACTS=20 REPEATS=3 WINDOW=3
#                                 CONCURRENCY=50 SUB_TIMEOUT=420 PORT=15900 STARLING_BUILD=native|jit
#                                 STARLING_BIN=DIR: use the build in DIR (from `bench/servers/starling.sh build X`: X/bin)
#                                 NO_BUILD=1: use the load generator as built (bench/Starling.Load, Release)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SERVERS=${SERVERS:-starling prosody ejabberd}
USERS=${USERS:-500}; CONTACTS=${CONTACTS:-20}; REPEATS=${REPEATS:-3}; WINDOW=${WINDOW:-3}
CONCURRENCY=${CONCURRENCY:-50}; SUB_TIMEOUT=${SUB_TIMEOUT:-420}; PORT=${PORT:-15900}
export STARLING_BUILD=${STARLING_BUILD:-native}
DOMAIN=fanout.local
. "$HERE/run_lib.sh"
bench_init fanout

{
    echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
    echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
    echo "users: $USERS contacts: $CONTACTS repeats: $REPEATS window_s: $WINDOW concurrency: $CONCURRENCY starling_build: $STARLING_BUILD"
    echo "loadavg_before: $(cat /proc/loadavg)"
} > "$RESULTS/facts.txt"

build_loadgen

L=(dotnet "$LOADGEN" fanout --port "$PORT" --domain "$DOMAIN" --users "$USERS" --contacts "$CONTACTS"
   --concurrency "$CONCURRENCY")
for s in $SERVERS; do
    dir=$WORK/$s
    start_server "$s" "$dir" "$USERS"
    log "$s: approving $CONTACTS contacts per user for $USERS users (subscribe phase)"
    timeout $(( SUB_TIMEOUT + 300 )) "${L[@]}" --subscribe --provision-only --timeout "$SUB_TIMEOUT" --label "$s-subscribe" \
        --json "$RESULTS/$s.jsonl" 2> "$RESULTS/$s-subscribe-loadgen.log" \
        || log "$s: the subscribe phase exited $? (see $s-subscribe-loadgen.log)"
    # The provisioning sessions have just logged out: let the server finish their unavailable broadcasts.
    sleep 3
    for r in $(seq 1 "$REPEATS"); do
        log "$s: fan-out, repeat $r/$REPEATS"
        timeout 300 "${L[@]}" --window "$WINDOW" --label "$s-r$r" --json "$RESULTS/$s.jsonl" \
            2> "$RESULTS/$s-r$r-loadgen.log" || log "$s: repeat $r exited $? (see $s-r$r-loadgen.log)"
        sleep 2
    done
    "$HERE/servers/$s.sh" stop "$dir" >&2
    CURRENT=""
    for f in "$dir"/*.log; do [ -f "$f" ] && cp "$f" "$RESULTS/$s-$(basename "$f")"; done
done
echo "loadavg_after: $(cat /proc/loadavg)" >> "$RESULTS/facts.txt"
echo "seconds: $(( SECONDS - T0 ))" >> "$RESULTS/facts.txt"

/usr/bin/env python3 - "$RESULTS" $SERVERS <<'PY' | tee "$RESULTS/summary.txt"
import json, sys, os, statistics
results, servers = sys.argv[1], sys.argv[2:]
med = {}
print(f"{'server':9} {'pairs approved':>16} {'subscribe s':>11} {'roster both':>11} {'presences/s (median, min-max)':>30} "
      f"{'from contacts: available / 2 per pair':>38} {'logins/s':>9}")
for s in servers:
    path = os.path.join(results, s + ".jsonl")
    if not os.path.exists(path):
        print(f"{s:9} no result"); continue
    lines = [json.loads(l) for l in open(path) if l.strip()]
    prov = next((l for l in lines if l.get("scenario") == "fanout-provision"), None)
    runs = [l for l in lines if l.get("scenario") == "fanout"]
    pv = f"{prov['pairs_approved']}/{prov['pairs_expected']}" if prov else "?"
    ps = f"{prov['subscribe_seconds']:.1f}{' (t/o)' if prov and prov['timed_out'] else ''}" if prov else "?"
    rb = prov["sampled_roster_both"] if prov else "?"
    if not runs:
        print(f"{s:9} {pv:>16} {ps:>11} {rb:>11} {'no measured run':>30}"); continue
    rates = [r["presences_per_s_active"] for r in runs]
    med[s] = statistics.median(rates)
    avail = statistics.median(r["presences_from_others_available"] for r in runs)
    expected = runs[0]["users"] * runs[0]["contacts"]
    logins = statistics.median(r["logins_per_s"] for r in runs)
    rate = f"{med[s]:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
    print(f"{s:9} {pv:>16} {ps:>11} {rb:>11} {rate:>30} {f'{avail:,.0f} / {expected:,}':>38} {logins:9.0f}")
refs = {s: v for s, v in med.items() if s != "starling"}
if "starling" in med and refs:
    best = max(refs, key=refs.get)
    print(f"\nStarling / best reference ({best}): {med['starling'] / refs[best]:.2f}x (target >= 5x)")
PY
log "results in $RESULTS"
