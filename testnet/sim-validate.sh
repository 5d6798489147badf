#!/usr/bin/env bash
# Measures the grid `dsd sim validate` compares the simulator with, on the real multi-process
# testnet: for each stage count and latency, brings a swarm up (up.sh), hands each prompt to its
# entry with `dsd generate --peer` under each --spec, and brings it down. One JSON line per
# generation goes to OUT (the entry's timing: generation only, not the client's JVM start).
#
#   testnet/sim-validate.sh [--stages 2,4] [--latency 0,20] [--specs off,4,auto] [--prompts 2]
#                           [--max-tokens 48] [--temperature 0] [--prompts-file F] [--out FILE]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
stages_list="2,4" latencies="0,20" specs="off,4,auto" prompts=2 max_tokens=48 temperature=0
prompts_file="$here/results/sim-prompts.txt" out="$here/results/sim-validate-raw.jsonl"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stages) stages_list="$2"; shift 2 ;;
    --latency) latencies="$2"; shift 2 ;;
    --specs) specs="$2"; shift 2 ;;
    --prompts) prompts="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --temperature) temperature="$2"; shift 2 ;;
    --prompts-file) prompts_file="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sim-validate.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
"$repo/dsd" --version >/dev/null
run="${TMPDIR:-/tmp}/dsd-sim-validate-$$"
# a private copy of the jar and scripts: a rebuild in the checkout while the grid runs must not
# swap classes under running nodes
snap="$run.snap"
mkdir -p "$snap/testnet" "$snap/cli/target"
cp "$here/up.sh" "$here/down.sh" "$snap/testnet/"; cp "$repo/dsd" "$snap/"; cp "$repo/cli/target/dsd.jar" "$snap/cli/target/"
ln -sfn "$repo/models" "$snap/models"
jar="$snap/cli/target/dsd.jar"
trap '"$here/down.sh" --run "$run" >/dev/null 2>&1 || true; rm -rf "$snap" "$run" "$run.up.log"' EXIT
mapfile -t texts < <(java -cp "$jar" dev.dsd.testnet.sim.TraceRecorder "$prompts_file" "$prompts")
: >"$out"
IFS=, read -ra sts <<<"$stages_list"
IFS=, read -ra lats <<<"$latencies"
IFS=, read -ra sps <<<"$specs"
for st in "${sts[@]}"; do
  for lat in "${lats[@]}"; do
    "$snap/testnet/up.sh" --stages "$st" --latency "$lat" --run "$run" >"$run.up.log" 2>&1 || { cat "$run.up.log" >&2; exit 1; }
    entry=$(cat "$run/entry")
    # prompts outside, specs inside: the specs of one prompt run back to back, so a machine whose
    # load drifts during the grid biases no spec against another
    for t in "${texts[@]}"; do
      for sp in "${sps[@]}"; do
        # a loaded machine sometimes misses the client's dial timeout: try again before giving up
        for attempt in 1 2 3; do
          if res=$(printf '%s' "$t" | base64 -d | java -XX:+UseSerialGC -jar "$jar" generate --peer "$entry" \
            --max-tokens "$max_tokens" --temperature "$temperature" --spec "$sp" --json -); then break; fi
          [[ $attempt -eq 3 ]] && exit 1
          sleep 2
        done
        printf '{"stages":%s,"latency_ms":%s,"spec":"%s","temperature":%s,"max_tokens":%s,"result":%s}\n' \
          "$st" "$lat" "$sp" "$temperature" "$max_tokens" "$res" >>"$out"
      done
    done
    echo "stages $st latency $lat ms done" >&2
    "$here/down.sh" --run "$run" >/dev/null
  done
done
