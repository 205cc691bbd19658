#!/usr/bin/env bash
# Drives two real Profanity clients (Debian's profanity, in tmux) against a running server: both log in over
# STARTTLS, chat both ways, then the second quits and the first writes to its full JID — the message the lab report
# saw lost — which must reach the second when it logs in again.
# Usage: profanity_chat.sh PORT USER1 PASS1 USER2 PASS2 [DOMAIN]   (accounts must exist)
# Exit 0 when every check passed; prints PASS/FAIL lines.
set -uo pipefail
port=$1 u1=$2 p1=$3 u2=$4 p2=$5 domain=${6:-localhost}
work=$(mktemp -d)
sock="$work/tmux.sock"
tm() { tmux -S "$sock" "$@"; }
cleanup() { tm kill-server >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
fail=0
tag="r$RANDOM$RANDOM"  # makes every text unique to this run (Profanity shows old chat history from its logs)
say() { echo "$*"; }

# Wait until a pane shows a pattern (bounded).
wait_for() { # session pattern seconds
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    if tm capture-pane -p -t "$1" -S -200 | grep -qF -- "$2"; then return 0; fi
    sleep 0.3
  done
  return 1
}

start_client() { # session home user pass
  mkdir -p "$2"
  local attempt
  for attempt in 1 2 3; do
    # The pane stays after profanity exits, so a failed start shows why (and the tmux server stays up).
    tm new-session -d -s "$1" -x 200 -y 50 "HOME=$2 TERM=xterm profanity; echo PROFANITY-EXITED \$?; sleep 30"
    if wait_for "$1" "Profanity" 15; then break; fi
    say "note $1: profanity did not start (attempt $attempt): $(tm capture-pane -p -t "$1" 2>/dev/null | grep -v '^$' | tail -3 | tr '\n' ' ')"
    tm kill-session -t "$1" 2>/dev/null || true
    [ "$attempt" = 3 ] && { say "FAIL $1: profanity did not start"; return 1; }
  done
  sleep 0.5
  tm send-keys -t "$1" "/connect $3@$domain server 127.0.0.1 port $port tls trust" Enter
  wait_for "$1" "password" 10 || wait_for "$1" "Enter password" 5
  tm send-keys -t "$1" "$4" Enter
  if wait_for "$1" "logged in successfully" 20; then say "PASS $1: $3@$domain logged in over STARTTLS"; else
    say "FAIL $1: login"; tm capture-pane -p -t "$1" | tail -5; return 1; fi
}

start_client a "$work/a" "$u1" "$p1" || fail=1
start_client b "$work/b" "$u2" "$p2" || fail=1

check_msg() { # from-session to-jid text receiver-session
  tm send-keys -t "$1" "/msg $2 $3" Enter
  # An incoming chat opens a new window in Profanity: look at the console, then at window 2.
  if wait_for "$4" "$3" 3 || { tm send-keys -t "$4" "/win 2" Enter; wait_for "$4" "$3" 12; }; then say "PASS message '$3' delivered"; else say "FAIL message '$3' not delivered"; fail=1; fi
}
if [ $fail -eq 0 ]; then
  check_msg a "$u2@$domain" "hola que tal estas $tag" b
  check_msg b "$u1@$domain" "bien y tu? $tag" a
  # The lab's last experiment: the recipient quits, then gets a message to its full JID.
  resource=$(tm capture-pane -p -t b -S -200 | grep -o "$u2@$domain/[A-Za-z0-9._-]*" | head -1)
  tm send-keys -t b "/quit" Enter
  sleep 1.5
  tm send-keys -t a "/msg ${resource:-$u2@$domain} estas? $tag" Enter
  sleep 1.5
  if tm capture-pane -p -t a -S -200 | grep -qi "service-unavailable\|error"; then say "FAIL sender got an error for the offline message"; fail=1; fi
  tm kill-session -t b 2>/dev/null || true
  start_client b2 "$work/b" "$u2" "$p2" || fail=1
  if wait_for b2 "estas? $tag" 5 || { tm send-keys -t b2 "/win 2" Enter; wait_for b2 "estas? $tag" 10; }; then
    say "PASS offline message delivered after re-login"
  else
    say "FAIL offline message not delivered after re-login"; tm capture-pane -p -t b2 | tail -8; fail=1
  fi
fi
[ $fail -eq 0 ] && say "SUMMARY profanity: all checks passed" || say "SUMMARY profanity: FAILED"
exit $fail
