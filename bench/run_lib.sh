# Shared by the one-at-a-time benchmark scripts (tail.sh, fanout.sh; sourced, not run). The caller sets HERE and REPO.
#   bench_init NAME   results folder (RESULTS, default bench/results/NAME-<UTC timestamp>), a work folder (WORK, removed
#                     on exit, stopping the server in CURRENT), LOADGEN, log and die, the open-files limit raised
#   build_loadgen     builds bench/Starling.Load (skipped with NO_BUILD=1)
#   start_server S DIR N   starts server S (starling, prosody, ejabberd; bench/servers/) on PORT for DOMAIN from DIR with
#                     user1..userN; Starling's build comes from STARLING_BIN when set (a folder from starling.sh build)
bench_init() {
    BENCH_NAME=$1
    RESULTS=${RESULTS:-$REPO/bench/results/$BENCH_NAME-$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$RESULTS"; RESULTS=$(cd "$RESULTS" && pwd)
    WORK=$(mktemp -d "/tmp/starling-$BENCH_NAME.XXXXXX")
    LOADGEN=$REPO/bench/Starling.Load/bin/Release/net10.0/starling-load.dll
    T0=$SECONDS
    CURRENT=""
    trap bench_cleanup EXIT
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
}

log() { printf '[%s %5ds] %s\n' "$BENCH_NAME" "$(( SECONDS - T0 ))" "$*" >&2; }
die() { echo "$BENCH_NAME.sh: $*" >&2; exit 1; }

bench_cleanup() {
    [ -n "$CURRENT" ] && "$HERE/servers/$CURRENT.sh" stop "$WORK/$CURRENT" >/dev/null 2>&1
    rm -rf "$WORK"
}

build_loadgen() {
    if [ "${NO_BUILD:-0}" != 1 ]; then
        log "building the load generator"
        timeout 600 dotnet build -c Release "$REPO/bench/Starling.Load" --nologo -v quiet >"$WORK/loadgen-build.log" 2>&1 \
            || { tail -20 "$WORK/loadgen-build.log" >&2; die "load generator build failed"; }
    fi
    [ -f "$LOADGEN" ] || die "no load generator at $LOADGEN"
}

start_server() { # SERVER DIR USERS
    local s=$1 dir=$2 n=$3
    [ -x "$HERE/servers/$s.sh" ] || die "unknown server '$s' (starling, ejabberd, prosody)"
    mkdir -p "$dir"
    if [ "$s" = starling ]; then
        if [ -n "${STARLING_BIN:-}" ]; then cp -r "$STARLING_BIN" "$dir/bin" || die "cannot copy $STARLING_BIN"
        else "$HERE/servers/starling.sh" build "$dir" >&2 || die "Starling build failed"; fi
        "$HERE/servers/starling.sh" provision "$dir" "$DOMAIN" "$n" >&2 || die "provisioning failed"
        "$HERE/servers/starling.sh" start "$dir" "$PORT" "$DOMAIN" >&2 || die "Starling did not start"
    else
        "$HERE/servers/$s.sh" start "$dir" "$PORT" "$DOMAIN" >&2 || die "$s did not start"
        "$HERE/servers/$s.sh" provision "$dir" "$DOMAIN" "$n" >&2 || die "$s provisioning failed"
    fi
    CURRENT=$s
}
