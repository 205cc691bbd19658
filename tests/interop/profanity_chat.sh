#!/usr/bin/env bash
# Drives two real Profanity clients (Debian's profanity, in tmux) against a running server: both log in over
# STARTTLS, chat both ways, then the second quits and the first writes to its full JID — the message the lab report
# saw lost — which must reach the second when it logs in again.
# Usage: profanity_chat.sh PORT USER1 PASS1 USER2 PASS2 [DOMAIN]   (accounts must exist)
# Exit 0 when every check passed; prints PASS/FAIL lines.
set -uo pipefail
port=$1 u1=$2 p1=$3 u2=$4 p2=$5 domain=${6:-localhost}
. "$(dirname "$0")/profanity_lib.sh"

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
