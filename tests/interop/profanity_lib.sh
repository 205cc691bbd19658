# Shared by the Profanity interop scripts (sourced, not run): real Profanity clients in tmux sessions of a private
# tmux server. The caller sets port and domain, and may set budget (a $SECONDS deadline every wait respects).
# Defines: work (a temporary folder, removed on exit), tm, say, fail=0, tag, wait_for, start_client.
work=$(mktemp -d)
sock="$work/tmux.sock"
tm() { tmux -S "$sock" "$@"; }
cleanup() { tm kill-server >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
fail=0
tag="r$RANDOM$RANDOM"  # makes every text unique to this run (Profanity shows old chat history from its logs)
say() { echo "$*"; }

# Wait until a pane shows a fixed string (bounded by the step's limit and, when set, by the run's budget).
wait_for() { # session text seconds
  local deadline=$((SECONDS + $3))
  [ -n "${budget:-}" ] && [ "$deadline" -gt "$budget" ] && deadline=$budget
  while [ $SECONDS -lt $deadline ]; do
    if tm capture-pane -p -t "$1" -S -300 | grep -qF -- "$2"; then return 0; fi
    sleep 0.3
  done
  return 1
}

# Starts Profanity in a tmux session and logs in over STARTTLS (trusting the server's self-signed certificate).
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
