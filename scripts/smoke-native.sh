#!/usr/bin/env bash
# Smoke test of the shipped native build: `./starling` built ahead-of-time, started in a temp folder with plaintext
# allowed, two users added with `starling adduser`, and the lab session replayed by slixmpp. Bounded in time.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export STARLING_BUILD=native
"$root/starling" --version >/dev/null || { echo "FAIL native build"; exit 1; }
cd "$work"
for u in sergio lucas; do echo "$u-pw" | "$root/starling" adduser "$u@localhost" --password-stdin >/dev/null || { echo "FAIL adduser $u"; exit 1; }; done
"$root/starling" start --Hosts:0:Name=localhost --Hosts:0:RequireEncryption=false --C2s:Port="$port" --C2s:Addresses:0=127.0.0.1 >server.log 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "^ready in" server.log && break; sleep 0.1; done
grep -q "^ready in" server.log || { echo "FAIL native server did not start"; cat server.log; exit 1; }
if timeout 120 /usr/bin/python3 "$root/tests/interop/lab_session.py" --host 127.0.0.1 --port "$port" --domain localhost \
     --user1 sergio --pass1 sergio-pw --user2 lucas --pass2 lucas-pw --tls starttls --timeout 10 >client.log 2>&1; then
  echo "PASS native build: $(grep -h '^ready in' server.log); $(tail -1 client.log)"
else
  echo "FAIL native build lab session"; cat client.log; tail -20 server.log; exit 1
fi
