#!/usr/bin/env bash
# Fuzz one Starling harness with AFL++ through SharpFuzz, for a bounded time, then print what was found.
#
#   fuzz/run.sh xml|scram|jid [SECONDS]       (default 600 s)
#
# Installs what is missing (afl++ from apt, the SharpFuzz.CommandLine tool into fuzz/.work/tools), publishes the
# harness project, instruments the code under test, checks that every seed passes, runs afl-fuzz under nice -n 19,
# and prints executions, exec/s, paths, coverage, crashes and hangs (each crash replayed with its exception).
# A second run of the same harness resumes where the last one stopped (same findings folder); afl-fuzz's counts
# then include the earlier runs.
#
# Environment: FUZZ_JOBS=N runs N afl-fuzz instances (one main, N-1 secondaries; default 1);
# FUZZ_WORK=DIR moves the work folder (default fuzz/.work); FUZZ_TIMEOUT_MS per-execution timeout (default 10000,
# generous because other builds share the cores); FUZZ_FRESH=1 discards earlier findings of this harness.
set -euo pipefail

harness=${1:-}
seconds=${2:-600}
case "$harness" in
    xml) target=Starling.Xml.dll ;;
    scram | jid) target=Starling.Xmpp.dll ;;
    *)
        echo "usage: fuzz/run.sh xml|scram|jid [SECONDS]" >&2
        exit 2
        ;;
esac

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${FUZZ_WORK:-$fuzz_dir/.work}
jobs=${FUZZ_JOBS:-1}
timeout_ms=${FUZZ_TIMEOUT_MS:-10000}
bin=$work/bin/$harness
plain=$work/plain/$harness
findings=$work/findings/$harness
tools=$work/tools
mkdir -p "$work" "$tools"

# --- tools -------------------------------------------------------------------------------------------------------
if ! command -v afl-fuzz >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "afl-fuzz is missing: run 'apt-get install -y afl++' as root" >&2
        exit 1
    fi
    echo "== installing afl++ (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi
if [ ! -x "$tools/sharpfuzz" ]; then
    echo "== installing SharpFuzz.CommandLine 2.3.0 into $tools"
    dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null
fi

# --- build and instrument ------------------------------------------------------------------------------------------
echo "== publishing the harness"
rm -rf "$bin" "$plain"
nice -n 19 dotnet publish "$fuzz_dir/Starling.Fuzz/Starling.Fuzz.csproj" -c Release -o "$bin" --nologo -v quiet
# An uninstrumented copy replays seeds and crashes outside afl-fuzz.
mkdir -p "$(dirname "$plain")"
cp -r "$bin" "$plain"
echo "== instrumenting $target"
"$tools/sharpfuzz" "$bin/$target"

echo "== replaying the seed corpus"
if ! dotnet "$plain/Starling.Fuzz.dll" "$harness" --replay "$fuzz_dir/corpus/$harness" >"$work/seeds-$harness.log"; then
    grep -v '^ok ' "$work/seeds-$harness.log" >&2
    echo "a seed already breaks an invariant: fix that first (see above)" >&2
    exit 1
fi
tail -n 1 "$work/seeds-$harness.log"

# --- fuzz ----------------------------------------------------------------------------------------------------------
if [ "${FUZZ_FRESH:-0}" = 1 ]; then rm -rf "$findings"; fi
mkdir -p "$findings"
export AFL_SKIP_BIN_CHECK=1           # the target is the dotnet host; SharpFuzz's fork server speaks AFL's protocol
export AFL_NO_AFFINITY=1              # shared machine: do not pin to a core
export AFL_SKIP_CPUFREQ=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FORKSRV_INIT_TMOUT=120000  # the runtime starts slowly on a loaded machine
export AFL_AUTORESUME=1               # a later run continues the same queue
export AFL_FAST_CAL=1
export AFL_NO_UI=1
export AFL_SKIP_CRASHES=1             # a seed that crashes is reported by the replay above, not fatal here

echo "== fuzzing $harness for $seconds s with $jobs instance(s) under nice -n 19 (log: $findings/*.log)"
started=$(date +%s)
pids=()
for i in $(seq 1 "$jobs"); do
    if [ "$i" = 1 ]; then role=(-M main); name=main; else role=(-S "sec$i"); name=sec$i; fi
    nice -n 19 afl-fuzz -i "$fuzz_dir/corpus/$harness" -o "$findings" -x "$fuzz_dir/dict/$harness.dict" \
        -t "$timeout_ms" -m none -V "$seconds" "${role[@]}" \
        -- dotnet "$bin/Starling.Fuzz.dll" "$harness" >"$findings/$name.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
elapsed=$(($(date +%s) - started))
if [ "$status" -ne 0 ]; then
    echo "afl-fuzz exited with $status; the end of its log:" >&2
    tail -n 30 "$findings/main.log" >&2
fi

# --- report --------------------------------------------------------------------------------------------------------
field() { sed -n "s/^$1 *: *//p" "$2"; }
total=0
for stats in "$findings"/*/fuzzer_stats; do
    [ -f "$stats" ] || continue
    node=$(basename "$(dirname "$stats")")
    execs=$(field execs_done "$stats")
    total=$((total + execs))
    printf '%-6s execs %s, %s exec/s, paths %s, map coverage %s, crashes %s, hangs %s\n' "$node" \
        "$execs" "$(field execs_per_sec "$stats")" "$(field corpus_count "$stats")" "$(field bitmap_cvg "$stats")" \
        "$(field saved_crashes "$stats")" "$(field saved_hangs "$stats")"
done
printf '%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$harness" "$elapsed" "$total" >>"$findings/history.tsv"
# afl-fuzz keeps counting on resume: the figures cover every run of this findings folder (history.tsv has each run).
echo "executions: $total over all runs of $findings (this run: ${elapsed}s; see history.tsv)"

shopt -s nullglob
crashes=("$findings"/*/crashes/id:*)
hangs=("$findings"/*/hangs/id:*)
echo "crashes: ${#crashes[@]}, hangs: ${#hangs[@]}"
if [ "${#crashes[@]}" -gt 0 ]; then
    dotnet "$plain/Starling.Fuzz.dll" "$harness" --replay "${crashes[@]}" | grep -v '^ok ' | head -n 200 || true
fi
for hang in "${hangs[@]}"; do echo "hang: $hang (replay: dotnet $plain/Starling.Fuzz.dll $harness --replay '$hang')"; done
[ "${#crashes[@]}" -eq 0 ] && [ "${#hangs[@]}" -eq 0 ]
