#!/usr/bin/env bash
# Stops every process testnet/up.sh started (SIGTERM: nodes close sessions and withdraw records).
#   testnet/down.sh [--run DIR]
set -euo pipefail
run="${TMPDIR:-/tmp}/dsd-testnet"
[[ "${1:-}" == "--run" ]] && run="$2"
[[ -f "$run/pids" ]] || { echo "down.sh: nothing running under $run"; exit 0; }
while read -r pid name; do kill "$pid" 2>/dev/null || true; done <"$run/pids"
for _ in $(seq 1 50); do
  alive=0
  while read -r pid name; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$run/pids"
  [[ $alive -eq 0 ]] && break
  sleep 0.1
done
while read -r pid name; do kill -9 "$pid" 2>/dev/null || true; done <"$run/pids"
rm -f "$run/pids"
echo "stopped $run"
