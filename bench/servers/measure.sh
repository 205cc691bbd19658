#!/bin/bash
# Measures what bench/servers/README.md reports, for each server in turn:
# launch-to-listening time, RSS right after start and 5 s later (one host, no
# users online), provisioning speed, the lab_session interop run (plain and
# STARTTLS), N concurrent SCRAM logins and the RSS while they are online.
#
#   bench/servers/measure.sh [SERVERS...]     default: prosody ejabberd starling
# Env: BASE_PORT (default 15300), ACCOUNTS (19000), LOGINS (1000), WORK (temp dir)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
BASE_PORT=${BASE_PORT:-15300}
ACCOUNTS=${ACCOUNTS:-19000}
LOGINS=${LOGINS:-1000}
DOMAIN=bench.local
LAB=${LAB:-/work/main/tests/interop/lab_session.py}
WORK=${WORK:-$(mktemp -d /tmp/refservers.XXXXXX)}
servers=("$@"); [ ${#servers[@]} -gt 0 ] || servers=(prosody ejabberd starling)

i=0
for s in "${servers[@]}"; do
    dir=$WORK/$s; port=$(( BASE_PORT + i )); i=$(( i + 1 ))
    echo "=== $s (port $port, $dir)"
    [ "$s" = starling ] && "$HERE/starling.sh" build "$dir" >/dev/null
    if ! "$HERE/$s.sh" start "$dir" "$port" "$DOMAIN"; then echo "$s: start failed"; continue; fi
    echo "rss right after start: $("$HERE/$s.sh" rss "$dir") KiB"
    sleep 5
    echo "rss 5 s after start:   $("$HERE/$s.sh" rss "$dir") KiB"
    "$HERE/$s.sh" provision "$dir" "$DOMAIN" "$ACCOUNTS" 2>&1 | grep -v 'accounts processed'
    for tls in plain starttls; do
        if [ -f "$LAB" ]; then
            timeout 300 /usr/bin/python3 "$LAB" --port "$port" --domain "$DOMAIN" --user1 user1 --pass1 pass1 \
                --user2 user2 --pass2 pass2 --tls "$tls" --timeout 10 2>&1 | grep -E '^(FAIL|SUMMARY)'
        fi
    done
    timeout 600 /usr/bin/python3 "$HERE/login_check.py" --port "$port" --domain "$DOMAIN" --users "$LOGINS" --hold 3 \
        --rss-cmd "$HERE/$s.sh rss $dir"
    "$HERE/$s.sh" stop "$dir"
done
echo "work folder: $WORK (remove it when done)"
