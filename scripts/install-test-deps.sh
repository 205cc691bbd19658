#!/usr/bin/env bash
# Installs what the test suite needs beyond the .NET SDK: Debian's python3-slixmpp (the client library the
# interop tests drive), profanity with tmux (the terminal client of the lab report, driven in tmux), and the openssl
# and setpriv commands some TLS and control-socket tests run.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
missing=()
/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 || missing+=(python3-slixmpp)
command -v profanity >/dev/null 2>&1 || missing+=(profanity)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # TLS tests compare with openssl s_client
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux) # control-socket test runs a client as another uid
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing test dependencies: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "need root to install: apt-get install -y ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
