#!/usr/bin/env bash
# What a native (ahead-of-time) build of `starling` needs besides the .NET SDK: clang and zlib headers.
# Idempotent; installs with apt-get when root (or sudo), else says what to install.
set -euo pipefail
missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
[ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "native build needs: apt-get install -y ${missing[*]} (or run with STARLING_BUILD=jit)" >&2; exit 1
  fi
fi
echo "installing build dependencies: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
