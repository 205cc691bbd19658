#!/bin/sh
# Create user1..userN (password pass1..passN) in a Starling data directory, PARALLEL adduser processes at a time.
# Usage: bench/provision-starling-users.sh DATA_DIR N [PARALLEL] [FIRST]
# Needs a Release build: dotnet build -c Release src/Starling
set -eu
DATA=${1:?data directory}
N=${2:?number of users}
PAR=${3:-3}
FIRST=${4:-1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DLL="$HERE/src/Starling/bin/Release/net10.0/starling.dll"
[ -f "$DLL" ] || { echo "build first: dotnet build -c Release src/Starling" >&2; exit 2; }
LAST=$((FIRST + N - 1))
seq "$FIRST" "$LAST" | xargs -P "$PAR" -I{} sh -c \
    "printf 'pass{}\n' | dotnet '$DLL' adduser user{}@localhost --password-stdin --DataDirectory='$DATA' >/dev/null || echo 'failed: user{}' >&2"
echo "provisioned user$FIRST..user$LAST in $DATA"
