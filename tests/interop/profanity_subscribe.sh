#!/usr/bin/env bash
# Two real Profanity clients (Debian's profanity, in tmux) who have never met add each other through RFC 6121
# presence subscriptions against a running server: USER1 asks (/sub request), USER2 allows (/sub allow), then the
# reverse; each then sees the other online in its roster ('both'), sees a status change of the other, and they chat.
# Usage: profanity_subscribe.sh PORT USER1 PASS1 USER2 PASS2 [DOMAIN]   (accounts must exist, rosters empty)
# Exit 0 when every check passed; prints PASS/FAIL lines and a SUMMARY line. Bounded: every wait has a limit and
# the whole run stops after 110 s.
set -uo pipefail
port=$1 u1=$2 p1=$3 u2=$4 p2=$5 domain=${6:-localhost}
j1="$u1@$domain" j2="$u2@$domain"
budget=$((SECONDS + 110))
. "$(dirname "$0")/profanity_lib.sh"

check() { # name session text seconds
  if wait_for "$2" "$3" "$4"; then say "PASS $1"; else
    say "FAIL $1: '$3' not shown in $2"; tm capture-pane -p -t "$2" | grep -v '^\s*$' | tail -6; fail=1; return 1; fi
}

start_client a "$work/a" "$u1" "$p1" || fail=1
start_client b "$work/b" "$u2" "$p2" || fail=1

if [ $fail -eq 0 ]; then
  # user1 asks; the request reaches user2 (stamped with user1's bare JID, RFC 6121 §3.1.2).
  tm send-keys -t a "/sub request $j2" Enter
  check "request from $j1 reaches $j2" b "Received authorization request from $j1" 10 &&
  { tm send-keys -t b "/sub allow $j1" Enter
    check "$j1 learns of the approval" a "Subscription received from $j2" 10 &&
    check "$j1 sees $j2 online" a "++ $j2 (" 10; } &&
  # And the reverse, so that both end with 'both'.
  { tm send-keys -t b "/sub request $j1" Enter
    check "request from $j2 reaches $j1" a "Received authorization request from $j2" 10; } &&
  { tm send-keys -t a "/sub allow $j2" Enter
    check "$j2 learns of the approval" b "Subscription received from $j1" 10 &&
    check "$j2 sees $j1 online" b "++ $j1 (" 10; } &&
  { tm send-keys -t a "/roster" Enter; tm send-keys -t b "/roster" Enter
    check "$j1's roster has $j2 as both" a "  $j2 - both" 10 &&
    check "$j2's roster has $j1 as both" b "  $j1 - both" 10; } &&
  # Presence keeps flowing both ways (the server broadcasts to the subscriptions made in this session).
  { tm send-keys -t a "/status set away a-$tag" Enter
    check "$j2 sees $j1's status" b "is away, \"a-$tag\"" 10 &&
    { tm send-keys -t b "/status set away b-$tag" Enter
      check "$j1 sees $j2's status" a "is away, \"b-$tag\"" 10; }; } &&
  # Then they chat (an incoming chat opens window 2 in Profanity).
  { tm send-keys -t a "/msg $j2 hola que tal $tag" Enter
    wait_for b "hola que tal $tag" 3 || tm send-keys -t b "/win 2" Enter
    check "message from $j1 delivered" b "hola que tal $tag" 10; } &&
  { tm send-keys -t b "/msg $j1 muy bien $tag" Enter
    wait_for a "muy bien $tag" 3 || tm send-keys -t a "/win 2" Enter
    check "message from $j2 delivered" a "muy bien $tag" 10; }
  [ $? -eq 0 ] || fail=1
fi
[ $fail -eq 0 ] && say "SUMMARY profanity_subscribe: all checks passed" || say "SUMMARY profanity_subscribe: FAILED"
exit $fail
