# Shared helpers for the reference-server scripts (sourced, not run).
# Every wait here is bounded.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# port_open PORT -> 0 if something accepts on 127.0.0.1:PORT
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_port PORT SECONDS -> 0 once the port accepts, 1 on timeout
wait_port() {
    local port=$1 limit=$2 start=$SECONDS
    while (( SECONDS - start < limit )); do
        port_open "$port" && return 0
        sleep 0.05
    done
    return 1
}

# wait_port_closed PORT SECONDS
wait_port_closed() {
    local port=$1 limit=$2 start=$SECONDS
    while (( SECONDS - start < limit )); do
        port_open "$port" || return 0
        sleep 0.1
    done
    return 1
}

# wait_gone SECONDS PID... -> 0 once none of the PIDs exists
wait_gone() {
    local limit=$1 start=$SECONDS; shift
    while (( SECONDS - start < limit )); do
        local alive=0 p
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        (( alive )) || return 0
        sleep 0.1
    done
    return 1
}

# now_ms -> milliseconds since the epoch
now_ms() { date +%s%3N; }

# rss_of PID... -> summed VmRSS in KiB
rss_of() {
    local total=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        total=$(( total + ${v:-0} ))
    done
    echo "$total"
}

# live_pids FILE -> the PIDs listed in FILE that still exist
live_pids() {
    local p
    [ -f "$1" ] || return 0
    for p in $(cat "$1"); do kill -0 "$p" 2>/dev/null && echo "$p"; done
}

# gen_cert DIR DOMAIN -> DIR/cert.pem and DIR/key.pem (self-signed, for STARTTLS)
gen_cert() {
    [ -s "$1/cert.pem" ] && [ -s "$1/key.pem" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
        -keyout "$1/key.pem" -out "$1/cert.pem" \
        -subj "/CN=$2" -addext "subjectAltName=DNS:$2" >/dev/null 2>&1 \
        || die "openssl could not generate a certificate"
    chmod 600 "$1/key.pem"
}

# stop_pids PORT GRACE PID... -> TERM, wait GRACE s, KILL, then check the port is closed
stop_pids() {
    local port=$1 grace=$2; shift 2
    [ $# -gt 0 ] || { echo "not running"; }
    [ $# -gt 0 ] && kill -TERM "$@" 2>/dev/null
    if [ $# -gt 0 ] && ! wait_gone "$grace" "$@"; then
        echo "still running after ${grace}s; sending KILL" >&2
        kill -KILL "$@" 2>/dev/null
        wait_gone 5 "$@" || die "could not kill $*"
    fi
    if [ -n "$port" ] && ! wait_port_closed "$port" 5; then
        die "port $port still open after stop"
    fi
    echo "stopped"
}

# report_provisioned N T0_MS -> the one line every provision step prints
report_provisioned() {
    local t1; t1=$(now_ms)
    echo "provisioned $1 accounts in $(( t1 - $2 )) ms ($(( $1 * 1000 / ( t1 - $2 + 1 ) )) accounts/s)"
}

# stop DIR: SIGTERM (every server's graceful shutdown: Prosody's, the Erlang VM's init:stop(), the .NET host's),
# KILL after STOP_GRACE s, then check the port is closed.
cmd_stop() {
    [ $# -eq 1 ] || die "usage: stop DIR"
    local dir=$1 port=""
    [ -f "$dir/port" ] && port=$(cat "$dir/port")
    stop_pids "$port" "$STOP_GRACE" $(server_pids "$dir")
}

# The command line every server script shares; a script defines server_pids, cmd_start, cmd_provision
# (and cmd_build if it has a build step), then calls: server_main "$@"
server_main() {
    local verb=${1:-} usage="start DIR PORT DOMAIN | provision DIR DOMAIN N | stop DIR | pids DIR | rss DIR"
    declare -F cmd_build >/dev/null && usage="build DIR | $usage"
    [ $# -gt 0 ] && shift
    case "$verb" in
        start|provision|stop) "cmd_$verb" "$@" ;;
        build) declare -F cmd_build >/dev/null || die "usage: $0 $usage"; cmd_build "$@" ;;
        pids) [ $# -eq 1 ] || die "usage: pids DIR"; server_pids "$1" ;;
        rss) [ $# -eq 1 ] || die "usage: rss DIR"; rss_of $(server_pids "$1") ;;
        *) die "usage: $0 $usage" ;;
    esac
}
