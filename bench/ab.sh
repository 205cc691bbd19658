#!/bin/bash
# A/B of Starling builds on one day: login (3,000 SCRAM-SHA-1 logins at concurrency 50, after a 500-login warm-up; the
# server's CPU per login from /proc) and chat at a fixed rate (RATE, default 8,000 msgs/s over 1,000 users for 10 s;
# the server's CPU per delivered message), alternating the builds for ROUNDS rounds (default 2) so that a machine
# whose speed drifts treats them alike. Each revision is checked out into its own worktree and built natively
# (bench/servers/starling.sh build) once; builds and data live under WORK (default /tmp/starling-ab).
#
#   bench/ab.sh REV [REV...]        e.g. bench/ab.sh HEAD~5 HEAD
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
[ $# -ge 1 ] || { echo "usage: bench/ab.sh REV [REV...]" >&2; exit 2; }
ROUNDS=${ROUNDS:-2}; RATE=${RATE:-8000}; PORT=${PORT:-15850}; WORK=${WORK:-/tmp/starling-ab}
export STARLING_BUILD=native
LOADGEN=$REPO/bench/Starling.Load/bin/Release/net10.0/starling-load.dll
mkdir -p "$WORK"
dotnet build -c Release "$REPO/bench/Starling.Load" --nologo -v quiet >"$WORK/loadgen-build.log" 2>&1 \
    || { tail -20 "$WORK/loadgen-build.log" >&2; exit 1; }
for rev in "$@"; do
    sha=$(git -C "$REPO" rev-parse --short "$rev") || exit 1
    src=$WORK/src-$sha; d=$WORK/run-$sha
    [ -d "$src" ] || git -C "$REPO" worktree add --detach "$src" "$sha" >/dev/null 2>&1 || { echo "cannot check out $rev" >&2; exit 1; }
    [ -x "$d/bin/starling" ] || "$src/bench/servers/starling.sh" build "$d" >/dev/null || { echo "build of $rev failed" >&2; exit 1; }
    [ -f "$d/provisioned" ] || { "$src/bench/servers/starling.sh" provision "$d" bench.local 3000 >/dev/null && touch "$d/provisioned"; }
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, clock ticks
last() { python3 -c "import json,sys; d=[json.loads(x) for x in sys.stdin if x.startswith('{')]; print(json.dumps([x for x in d if x['scenario']==sys.argv[1]][-1]))" "$1"; }
for r in $(seq 1 "$ROUNDS"); do
    for rev in "$@"; do
        sha=$(git -C "$REPO" rev-parse --short "$rev"); src=$WORK/src-$sha; d=$WORK/run-$sha
        "$src/bench/servers/starling.sh" start "$d" "$PORT" bench.local >/dev/null || { echo "start of $rev failed" >&2; exit 1; }
        pid=$("$src/bench/servers/starling.sh" pids "$d" | head -1)
        dotnet "$LOADGEN" login --port "$PORT" --domain bench.local --users 500 --concurrency 50 >/dev/null 2>&1
        t0=$(cpu "$pid")
        login=$(dotnet "$LOADGEN" login --port "$PORT" --domain bench.local --users 3000 --concurrency 50 2>/dev/null | last login)
        t1=$(cpu "$pid")
        chat=$(dotnet "$LOADGEN" chat --port "$PORT" --domain bench.local --users 1000 --rate "$RATE" --duration 10 --warmup 2 --drain 1 \
            --server-pid "$pid" 2>/dev/null | last chat)
        python3 - "$r" "$rev" "$login" "$chat" "$(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / 3000 ))" <<'PY'
import json, sys
r, rev, login, chat, cpu_login = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
per_msg = chat["server_cpu_pct"] * 10000 / max(1, chat["delivered_per_s"])
print(f"round {r} {rev}: login {login['logins_per_s']:.0f}/s ({login['failed']} failed), server CPU {cpu_login} us/login | "
      f"chat {chat['delivered_per_s']:.0f}/s delivered, {chat['lost']} lost, p99 {chat['p99_ms']:.1f} ms, server CPU {per_msg:.1f} us/msg")
PY
        "$src/bench/servers/starling.sh" stop "$d" >/dev/null
    done
done
