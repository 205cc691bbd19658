#!/bin/bash
# Side-by-side benchmark: the relay floor, Starling (native build), Prosody and ejabberd, one at a
# time on loopback, the same starling-load scenarios against each; raw JSON lines go to
# bench/results/<UTC timestamp>/, then bench/Starling.Report rewrites the "Side by side" section of
# docs/benchmarks.md and docs/benchmarks-chat.png.
#
#   bench/compare.sh [--quick] [--only relay|starling|prosody|ejabberd]... [--no-report] [--no-install]
#
#   --quick     tiny sizes, one repeat (smoke test of the harness, ~3.5 minutes)
#   --only S    run only server S (repeatable); the report then covers only what that run measured
#
# Environment (defaults = the published run):
#   REPEATS=3        repeats of every measurement
#   BIG_REPEATS=1    repeats of the 10,000- and 19,000-session idle runs (each costs 1-3 minutes per server)
#   IDLE_TLS_BIG=1   0 = skip the idle run with STARTTLS at 19,000 sessions (saves a few minutes)
#   RESULTS=DIR      results folder (default bench/results/<UTC timestamp>)
#
# Per server: start -> footprint (RSS 3 s after start, start-to-listening) x REPEATS -> provision
# 19,000 users -> login x REPEATS -> chat rate search x REPEATS -> stop -> idle runs (the server
# restarted before each). Only one server runs at a time; each has its own folder and port. Every
# step is bounded (timeout); a step that fails is recorded as an "unavailable" line with the
# reason and the run goes on.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/servers/lib.sh"

QUICK=0; REPORT=1; INSTALL=1; ONLY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --only) shift; ONLY+=("${1:?--only needs a server}") ;;
        --no-report) REPORT=0 ;;
        --no-install) INSTALL=0 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
SERVERS=(relay starling prosody ejabberd)
[ ${#ONLY[@]} -gt 0 ] && SERVERS=("${ONLY[@]}")
for s in "${SERVERS[@]}"; do case "$s" in relay|starling|prosody|ejabberd) ;; *) die "unknown server $s" ;; esac; done

DOMAIN=bench.local
BASE_PORT=${BASE_PORT:-15500}
if [ "$QUICK" -eq 1 ]; then
    REPEATS=1; BIG_REPEATS=1; ACCOUNTS=300
    LOGIN_USERS=100; LOGIN_SHORT_USERS=50; IDLE_SIZES=(50 100 200); IDLE_TLS_SIZES=(50 100); HOLD=3
    CHAT_USERS=50; CHAT_RATE=200; CHAT_FACTOR=2; CHAT_DURATION=3; CHAT_WARMUP=1; CHAT_DRAIN=1; CHAT_STEPS=2
    WARM_USERS=20
else
    REPEATS=${REPEATS:-3}; BIG_REPEATS=${BIG_REPEATS:-1}; ACCOUNTS=19000
    # 3,000 logins per run: at 1,000 a fast server finishes in ~0.2 s and the rate mostly measured the ramp-up
    # (the same build spread 3,100-4,400 logins/s from run to run).
    # The short runs (the method of the earlier reports) are measured too and reported beside them.
    LOGIN_USERS=3000; LOGIN_SHORT_USERS=1000; IDLE_SIZES=(1000 10000 19000); IDLE_TLS_SIZES=(1000 10000); HOLD=15
    [ "${IDLE_TLS_BIG:-1}" = 1 ] && IDLE_TLS_SIZES+=(19000)
    CHAT_USERS=1000; CHAT_RATE=1000; CHAT_FACTOR=2; CHAT_DURATION=10; CHAT_WARMUP=2; CHAT_DRAIN=1; CHAT_STEPS=9
    WARM_USERS=200
fi
LOGIN_CONCURRENCY=50

T0=$SECONDS
log() { printf '[compare %4ds] %s\n' "$(( SECONDS - T0 ))" "$*" >&2; }

RESULTS=${RESULTS:-$REPO/bench/results/$(date -u +%Y%m%dT%H%M%SZ)$([ "$QUICK" -eq 1 ] && echo -quick)}
mkdir -p "$RESULTS"; RESULTS=$(cd "$RESULTS" && pwd)
WORK=$(mktemp -d /tmp/compare.XXXXXX)
LOADGEN_DLL=$REPO/bench/Starling.Load/bin/Release/net10.0/starling-load.dll

CURRENT_SERVER=""; CURRENT_DIR=""; RELAY_PID=""
cleanup() {
    if [ -n "$CURRENT_SERVER" ] && [ -n "$CURRENT_DIR" ]; then
        "$HERE/servers/$CURRENT_SERVER.sh" stop "$CURRENT_DIR" >/dev/null 2>&1 || true
    fi
    if [ -n "$RELAY_PID" ]; then kill -TERM "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

ulimit -n 20000 2>/dev/null || log "warning: could not raise the fd limit to 20000 (have $(ulimit -n))"

# ---------------------------------------------------------------- setup
if [ "$INSTALL" -eq 1 ]; then
    log "installing reference servers and native build deps (idempotent)"
    timeout 900 "$HERE/servers/install.sh" >"$WORK/install.log" 2>&1 || { tail -20 "$WORK/install.log" >&2; die "install.sh failed"; }
    timeout 900 "$REPO/scripts/install-build-deps.sh" >>"$WORK/install.log" 2>&1 || { tail -20 "$WORK/install.log" >&2; die "install-build-deps.sh failed"; }
fi
log "building the load generator (Release)"
timeout 600 dotnet build -c Release "$REPO/bench/Starling.Load" --nologo -v quiet >"$WORK/loadgen-build.log" 2>&1 \
    || { tail -30 "$WORK/loadgen-build.log" >&2; die "load generator build failed"; }
STARLING_BIN=$WORK/starling-build
if printf '%s\n' "${SERVERS[@]}" | grep -qx starling; then
    log "building Starling (native, PublishAot)"
    STARLING_BUILD=native "$HERE/servers/starling.sh" build "$STARLING_BIN" >&2 || die "Starling build failed"
fi

# Facts for the report (machine, versions, parameters).
{
    echo "started_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command=bench/compare.sh$([ "$QUICK" -eq 1 ] && echo ' --quick')$(for s in "${ONLY[@]}"; do printf ' --only %s' "$s"; done)"
    echo "repeats=$REPEATS"; echo "big_repeats=$BIG_REPEATS"; echo "quick=$QUICK"
    echo "accounts=$ACCOUNTS"; echo "login_users=$LOGIN_USERS"; echo "login_short_users=$LOGIN_SHORT_USERS"; echo "login_concurrency=$LOGIN_CONCURRENCY"
    echo "idle_sizes=${IDLE_SIZES[*]}"; echo "idle_tls_sizes=${IDLE_TLS_SIZES[*]}"; echo "idle_hold_s=$HOLD"
    echo "chat_users=$CHAT_USERS"; echo "chat_rate=$CHAT_RATE"; echo "chat_factor=$CHAT_FACTOR"
    echo "chat_duration_s=$CHAT_DURATION"; echo "chat_warmup_s=$CHAT_WARMUP"; echo "chat_drain_s=$CHAT_DRAIN"; echo "chat_max_steps=$CHAT_STEPS"
    echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "cores=$(nproc)"
    echo "mem_gb=$(awk '/^MemTotal:/ {printf "%.0f", $2/1048576}' /proc/meminfo)"
    echo "os=$(. /etc/os-release; echo "$PRETTY_NAME")"
    echo "kernel=$(uname -r)"
    echo "dotnet_sdk=$(dotnet --version)"
    echo "dotnet_runtime=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')"
    echo "prosody=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)"
    echo "ejabberd=$(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null)"
    echo "erlang=$(dpkg-query -W -f='${Version}' erlang-base 2>/dev/null)"
    echo "lua=$(dpkg-query -W -f='${Version}' lua5.4 2>/dev/null)"
    echo "starling=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$REPO/Directory.Build.props" | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null), native AOT build)"
} > "$RESULTS/facts.txt"

# ---------------------------------------------------------------- helpers
# loadgen OUTFILE BOUND_S ARGS...: run starling-load, JSON lines appended to OUTFILE, stderr to OUTFILE.log
loadgen() {
    local out=$1 bound=$2; shift 2
    timeout --kill-after=10 "$bound" dotnet "$LOADGEN_DLL" "$@" --json "$out" --progress 30 >>"${out%.jsonl}.log" 2>&1
}

# unavailable FILE SCENARIO REASON: record that a measurement could not be made
unavailable() {
    local reason=${3//\"/\'}
    printf '{"scenario":"%s","unavailable":true,"reason":"%s"}\n' "$2" "$reason" >> "$1"
    log "  $2: unavailable: $3"
}

srv() { "$HERE/servers/$1.sh" "${@:2}"; }

# start_server S DIR PORT -> 0 when listening (prints nothing on success)
start_server() {
    local s=$1 dir=$2 port=$3
    mkdir -p "$dir"
    [ "$s" = starling ] && [ ! -e "$dir/bin" ] && ln -s "$STARLING_BIN/bin" "$dir/bin"
    if srv "$s" start "$dir" "$port" "$DOMAIN" >>"$dir/harness.log" 2>&1; then
        CURRENT_SERVER=$s; CURRENT_DIR=$dir; return 0
    fi
    tail -5 "$dir/harness.log" >&2; return 1
}
stop_server() {
    srv "$1" stop "$2" >>"$2/harness.log" 2>&1 || log "  warning: $1 stop reported a problem (see $2/harness.log)"
    CURRENT_SERVER=""; CURRENT_DIR=""
}
pid_args() { local p; for p in $(srv "$1" pids "$2"); do printf -- '--server-pid %s ' "$p"; done; }

# check_line FILE SCENARIO: did the last run append a line for SCENARIO?
has_line() { [ -s "$1" ] && grep -q "\"scenario\":\"$2\"" "$1"; }

# chat_search S PORT OUTFILE LABEL [PID-ARGS...] (S = relay: --protocol relay)
chat_search() {
    local s=$1 port=$2 out=$3 label=$4; shift 4
    local proto=(); [ "$s" = relay ] && proto=(--protocol relay)
    local bound=$(( (CHAT_WARMUP + CHAT_DURATION + CHAT_DRAIN + 15) * CHAT_STEPS + 120 ))
    loadgen "$out" "$bound" chat "${proto[@]}" --search --port "$port" --domain "$DOMAIN" --users "$CHAT_USERS" \
        --rate "$CHAT_RATE" --search-factor "$CHAT_FACTOR" --search-max-steps "$CHAT_STEPS" \
        --duration "$CHAT_DURATION" --warmup "$CHAT_WARMUP" --drain "$CHAT_DRAIN" --p99-limit-ms 100 \
        --label "$label" "$@"
    local rc=$?
    has_line "$out" chat-search || unavailable "$out" chat-search "chat search exited $rc without a result (see $(basename "${out%.jsonl}.log"))"
}

# ---------------------------------------------------------------- relay floor
run_relay() {
    local port=$1 raw=$RESULTS/relay
    mkdir -p "$raw"
    local k
    for (( k = 1; k <= REPEATS; k++ )); do
        log "relay: chat search (repeat $k/$REPEATS)"
        dotnet "$LOADGEN_DLL" relay serve --port "$port" --duration 900 >>"$raw/relay-serve.log" 2>&1 &
        RELAY_PID=$!
        if ! wait_port "$port" 30; then unavailable "$raw/chat-r$k.jsonl" chat-search "relay did not listen"; kill "$RELAY_PID" 2>/dev/null; RELAY_PID=""; continue; fi
        chat_search relay "$port" "$raw/chat-r$k.jsonl" "relay/chat/r$k" --server-pid "$RELAY_PID"
        kill -TERM "$RELAY_PID" 2>/dev/null; wait_gone 10 "$RELAY_PID" || kill -KILL "$RELAY_PID" 2>/dev/null
        wait "$RELAY_PID" 2>/dev/null; RELAY_PID=""
    done
}

# ---------------------------------------------------------------- one XMPP server
# login_runs S DIR PORT NAME USERS: REPEATS login runs of USERS logins into $raw/NAME-r<k>.jsonl
login_runs() {
    local s=$1 dir=$2 port=$3 name=$4 users=$5 k
    log "$s: $name $users users, concurrency $LOGIN_CONCURRENCY (x$REPEATS)"
    for (( k = 1; k <= REPEATS; k++ )); do
        # shellcheck disable=SC2046
        loadgen "$raw/$name-r$k.jsonl" 300 login --port "$port" --domain "$DOMAIN" --users "$users" \
            --concurrency "$LOGIN_CONCURRENCY" --label "$s/$name/r$k" $(pid_args "$s" "$dir")
        has_line "$raw/$name-r$k.jsonl" login || unavailable "$raw/$name-r$k.jsonl" login "login run produced no result"
    done
}

run_server() {
    local s=$1 port=$2 raw=$RESULTS/$s dir=$WORK/$s k n
    mkdir -p "$raw"

    # Footprint: one unmeasured start creates what a first start creates (certificates, Mnesia
    # schema), then REPEATS fresh starts with one host and no accounts: start-to-listening, RSS 3 s later.
    log "$s: footprint (x$REPEATS)"
    if ! start_server "$s" "$dir" "$port"; then unavailable "$raw/footprint.jsonl" footprint "start failed"; return; fi
    stop_server "$s" "$dir"
    for (( k = 1; k <= REPEATS; k++ )); do
        if start_server "$s" "$dir" "$port"; then
            sleep 3
            printf '{"scenario":"footprint","repeat":%d,"startup_ms":%s,"rss_3s_kb":%s,"server_pids":"%s"}\n' \
                "$k" "$(cat "$dir/startup_ms")" "$(srv "$s" rss "$dir")" "$(srv "$s" pids "$dir" | xargs)" >> "$raw/footprint.jsonl"
            stop_server "$s" "$dir"
        else
            unavailable "$raw/footprint.jsonl" footprint "start failed (repeat $k)"
        fi
    done

    log "$s: provisioning $ACCOUNTS accounts"
    start_server "$s" "$dir" "$port" || { unavailable "$raw/provision.jsonl" provision "start failed"; return; }
    local t0; t0=$(now_ms)
    if timeout 900 "$HERE/servers/$s.sh" provision "$dir" "$DOMAIN" "$ACCOUNTS" >>"$dir/harness.log" 2>&1; then
        printf '{"scenario":"provision","accounts":%d,"ms":%d}\n' "$ACCOUNTS" "$(( $(now_ms) - t0 ))" >> "$raw/provision.jsonl"
    else
        unavailable "$raw/provision.jsonl" provision "provisioning failed (see harness log)"; stop_server "$s" "$dir"; return
    fi

    # Login: warm-up (not recorded), then REPEATS runs on the same server, sustained then short.
    loadgen "$WORK/warm.jsonl" 120 login --port "$port" --domain "$DOMAIN" --users "$WARM_USERS" --concurrency 20 >/dev/null
    login_runs "$s" "$dir" "$port" login "$LOGIN_USERS"
    login_runs "$s" "$dir" "$port" loginshort "$LOGIN_SHORT_USERS"

    # Chat search on the same (warm) server, REPEATS times.
    for (( k = 1; k <= REPEATS; k++ )); do
        log "$s: chat search (repeat $k/$REPEATS)"
        # shellcheck disable=SC2046
        chat_search "$s" "$port" "$raw/chat-r$k.jsonl" "$s/chat/r$k" $(pid_args "$s" "$dir")
    done
    stop_server "$s" "$dir"

    # Idle: a fresh server for every run (memory depends on what happened before), warmed by a
    # short login run, then N sessions held >= HOLD s; RSS per session from the server's PIDs.
    local tls size reps file
    for tls in none starttls; do
        local sizes=("${IDLE_SIZES[@]}"); [ "$tls" = starttls ] && sizes=("${IDLE_TLS_SIZES[@]}")
        for size in "${sizes[@]}"; do
            reps=$REPEATS; [ "$size" -ge 10000 ] && reps=$BIG_REPEATS
            for (( k = 1; k <= reps; k++ )); do
                log "$s: idle $size sessions, tls=$tls (repeat $k/$reps)"
                file=$raw/idle-$tls-$size-r$k.jsonl
                if ! start_server "$s" "$dir" "$port"; then unavailable "$file" idle "start failed"; continue; fi
                loadgen "$WORK/warm.jsonl" 120 login --port "$port" --domain "$DOMAIN" --users "$WARM_USERS" --concurrency 20 --tls "$tls" >/dev/null
                sleep 1
                # shellcheck disable=SC2046
                loadgen "$file" $(( 240 + size / 20 )) idle --port "$port" --domain "$DOMAIN" --users "$size" \
                    --concurrency "$LOGIN_CONCURRENCY" --tls "$tls" --duration "$HOLD" --timeout 60 \
                    --label "$s/idle/$tls/$size/r$k" $(pid_args "$s" "$dir")
                local rc=$?
                has_line "$file" idle || unavailable "$file" idle "idle run exited $rc without a result (server $(srv "$s" pids "$dir" | grep -q . && echo alive || echo dead))"
                stop_server "$s" "$dir"
            done
        done
    done
}

# ---------------------------------------------------------------- run
i=0
for s in relay starling prosody ejabberd; do
    port=$(( BASE_PORT + i )); i=$(( i + 1 ))
    printf '%s\n' "${SERVERS[@]}" | grep -qx "$s" || continue
    log "=== $s (port $port)"
    if [ "$s" = relay ]; then run_relay "$port"; else run_server "$s" "$port"; fi
    # keep the results small: server logs only if they say something
done
echo "finished_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$RESULTS/facts.txt"
echo "total_s=$(( SECONDS - T0 ))" >> "$RESULTS/facts.txt"
log "raw results in $RESULTS"

if [ "$REPORT" -eq 1 ]; then
    log "writing docs/benchmarks.md (Side by side) and docs/benchmarks-chat.png"
    timeout 600 dotnet run -c Release --project "$REPO/bench/Starling.Report" -- "$RESULTS" "$REPO/docs/benchmarks.md" "$REPO/docs/benchmarks-chat.png" >&2 \
        || log "report generation failed"
fi
log "total time $(( SECONDS - T0 )) s ($(( (SECONDS - T0) / 60 )) min $(( (SECONDS - T0) % 60 )) s)"
