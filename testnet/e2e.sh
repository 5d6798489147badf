#!/usr/bin/env bash
# End-to-end check run by .ci/run: a 4-stage testnet of real processes with 2 ms links; a prompt
# handed to a stage that is not the entry (dsd generate --peer) must come back token-for-token as
# the single-process target's greedy output; then the testnet goes down.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
run="${TMPDIR:-/tmp}/dsd-e2e-testnet"
trap '"$here/down.sh" --run "$run" >/dev/null 2>&1 || true' EXIT
"$here/up.sh" --stages 4 --latency 2 --run "$run" "$@"
local_model=()
while [[ $# -gt 0 ]]; do [[ "$1" == --model ]] && local_model=(--model "$2"); shift; done
stage=$(awk '$1 == "stage1" {print $2}' "$run/nodes")
prompt='def read_config(path):
    """Read a configuration file and return a dict."""
'
jar="$repo/cli/target/dsd.jar"
ids() { sed -n 's/.*"token_ids":\[\([0-9,]*\)\].*/\1/p'; }
swarm=$(printf '%s' "$prompt" | java -jar "$jar" generate --peer "$stage" --max-tokens 48 --json - | tee "$run/swarm.json" | ids)
local=$(printf '%s' "$prompt" | java -Ddsd.home="$repo" -jar "$jar" generate "${local_model[@]}" --spec off --max-tokens 48 --json - | ids)
if [[ -z "$swarm" || "$swarm" != "$local" ]]; then
  echo "e2e: FAILED: the swarm's output differs from the local target's" >&2
  echo "swarm: $swarm" >&2; echo "local: $local" >&2
  exit 1
fi
echo "e2e: ok: 48 tokens through stage1 of a 4-stage testnet equal the local target ($(sed -n 's/.*"tokens_per_second":\([0-9.]*\).*/\1/p' "$run/swarm.json" | cut -c1-6) tok/s)"
