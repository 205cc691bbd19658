#!/usr/bin/env bash
# Runs every test: unit, functional (in-process server) and interop (slixmpp against Starling).
# Installs missing test dependencies first, and ends with one line: "N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
bash scripts/install-test-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
results="$root/TestResults"
rm -rf "$results"
status=0
if ! dotnet build Starling.sln -c Release --nologo -v quiet; then
  echo "0 passed, 1 failed"
  exit 1
fi
# One results folder per test project, so no report can overwrite another's.
for project in tests/*/*.csproj; do
  name=$(basename "$project" .csproj)
  dotnet test "$project" -c Release --no-build --nologo --logger trx --results-directory "$results/$name" "$@" || status=$?
done
passed=0; failed=0
shopt -s nullglob
for trx in "$results"/*/*.trx; do
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
if [ $status -ne 0 ] && [ $failed -eq 0 ]; then failed=1; fi  # build failure or crashed test host
echo "$passed passed, $failed failed"
exit $status
