#!/bin/bash
# Starling, with the same interface as the reference-server scripts.
#   starling.sh build DIR               publish the native (ahead-of-time) build Starling ships into DIR/bin
#                                       (start does it if missing); STARLING_BUILD=jit: the JIT build (starling.dll)
#   starling.sh start DIR PORT DOMAIN   start in the background from DIR (no config file: built-in
#                                       defaults plus command-line overrides)
#   starling.sh provision DIR DOMAIN N  create user1..userN / pass1..passN with `starling import-users`
#   starling.sh stop DIR | pids DIR | rss DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

START_TIMEOUT=${START_TIMEOUT:-30}
STOP_GRACE=${STOP_GRACE:-15}
unset STARLING_CONFIG   # never pick up a config file from the environment

# STARLING_BUILD=native (default): what Starling ships, `dotnet publish -r linux-x64 -p:PublishAot=true`
# (needs clang and zlib1g-dev: scripts/install-build-deps.sh), run as DIR/bin/starling.
# STARLING_BUILD=jit: the framework-dependent build, run as `dotnet DIR/bin/starling.dll`.
STARLING_BUILD=${STARLING_BUILD:-native}
case "$STARLING_BUILD" in native|jit) ;; *) die "STARLING_BUILD must be native or jit (got '$STARLING_BUILD')" ;; esac

cmd_build() {
    [ $# -eq 1 ] || die "usage: build DIR"
    mkdir -p "$1"
    local dir; dir=$(cd "$1" && pwd)
    local extra=()
    [ "$STARLING_BUILD" = native ] && extra=(-r linux-x64 -p:PublishAot=true)
    rm -rf "$dir/bin"   # never mix a native and a JIT build in one folder
    timeout 900 dotnet publish "$REPO/src/Starling/Starling.csproj" -c Release "${extra[@]}" -o "$dir/bin" \
        --nologo -v quiet --disable-build-servers >"$dir/build.log" 2>&1 \
        || { tail -30 "$dir/build.log" >&2; die "$STARLING_BUILD build failed (see $dir/build.log)"; }
    echo "$STARLING_BUILD" > "$dir/bin/BUILD"
    echo "built ($STARLING_BUILD) $(built_exe "$dir")"
}

# built_exe DIR -> the file the chosen build runs (DIR/bin/starling or DIR/bin/starling.dll)
built_exe() {
    if [ "$STARLING_BUILD" = native ]; then echo "$1/bin/starling"; else echo "$1/bin/starling.dll"; fi
}

# has_build DIR -> 0 if DIR/bin holds the chosen kind of build
has_build() {
    [ -f "$(built_exe "$1")" ] && [ "$(cat "$1/bin/BUILD" 2>/dev/null)" = "$STARLING_BUILD" ]
}

# run_starling DIR ARGS... -> exec the chosen build (native: the executable itself; jit: through dotnet)
run_starling() {
    local dir=$1; shift
    if [ "$STARLING_BUILD" = native ]; then exec "$dir/bin/starling" "$@"; else exec dotnet "$dir/bin/starling.dll" "$@"; fi
}

# Same options for every command, so start and provision see the same host and data.
# The read budget is off, as Prosody runs without mod_limits and ejabberd with c2s_shaper: none here (benchmarks
# must not be throttled). The connection caps need no change: ~19,500 connections stay under Limits:MaxConnections
# (100,000), loopback clients are exempt from the per-address cap, and at most --concurrency are authenticating.
common_args() {  # DIR PORT DOMAIN
    echo "--DataDirectory=$1/data --C2s:Port=$2 --C2s:Addresses:0=127.0.0.1 --Hosts:0:Name=$3" \
         "--Hosts:0:RequireEncryption=false --Hosts:0:AllowPlainWithoutTls=true --Log:Level=Warning" \
         "--C2s:ReadBytesPerSecond=0"
}

server_pids() { live_pids "$1/pids"; }

cmd_start() {
    [ $# -eq 3 ] || die "usage: start DIR PORT DOMAIN"
    local dir port=$2 domain=$3
    mkdir -p "$1"; dir=$(cd "$1" && pwd)
    [ -z "$(server_pids "$dir")" ] || die "already running in $dir (pids $(server_pids "$dir" | xargs))"
    port_open "$port" && die "port $port is already in use"
    has_build "$dir" || cmd_build "$dir"
    mkdir -p "$dir/data"
    echo "$port" > "$dir/port"; echo "$domain" > "$dir/domain"
    local t0; t0=$(now_ms)
    (
        ulimit -n 20000   # ~19,500 client sockets plus files
        cd "$dir"         # no starling.json here: built-in defaults + overrides
        # Warning-level logging to stdout, kept in DIR/starling.log. Plain TCP and PLAIN
        # without TLS allowed; STARTTLS uses the certificate Starling generates on first start.
        # shellcheck disable=SC2046
        run_starling "$dir" start $(common_args "$dir" "$port" "$domain") \
            >>"$dir/starling.log" 2>&1 </dev/null
    ) &
    local pid=$!
    echo "$pid" > "$dir/pids"
    if ! wait_port "$port" "$START_TIMEOUT"; then
        echo "starling did not listen on $port within ${START_TIMEOUT}s; log:" >&2
        tail -20 "$dir/starling.log" >&2 || true
        kill -KILL "$pid" 2>/dev/null || true
        exit 1
    fi
    local t1; t1=$(now_ms)
    echo "$(( t1 - t0 ))" > "$dir/startup_ms"
    echo "starling ($STARLING_BUILD) started: pid $pid, 127.0.0.1:$port, domain $domain, listening after $(( t1 - t0 )) ms, rss $(rss_of "$pid") KiB"
}

cmd_provision() {
    [ $# -eq 3 ] || die "usage: provision DIR DOMAIN N"
    local dir domain=$2 n=$3 port=5222
    mkdir -p "$1"; dir=$(cd "$1" && pwd)
    has_build "$dir" || cmd_build "$dir"
    [ -f "$dir/port" ] && port=$(cat "$dir/port")
    mkdir -p "$dir/data"
    local t0; t0=$(now_ms)
    awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d,pass%d\n", i, i }' > "$dir/users.csv"
    # import-users derives the SCRAM keys on all cores and writes them in one go.
    local exe=("$dir/bin/starling"); [ "$STARLING_BUILD" = jit ] && exe=(dotnet "$dir/bin/starling.dll")
    # shellcheck disable=SC2046
    (cd "$dir" && timeout 600 "${exe[@]}" import-users "$dir/users.csv" --host "$domain" \
        $(common_args "$dir" "$port" "$domain")) || die "import-users failed"
    rm -f "$dir/users.csv"
    report_provisioned "$n" "$t0"
}

server_main "$@"
