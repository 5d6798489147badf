#!/usr/bin/env bash
# The pipeline benchmark across real processes: for each latency, brings a testnet up (up.sh),
# hands held-out prompts to its entry through `dsd generate --peer` under each decoding mode, and
# brings it down; then prints a table, writes JSON and draws a PNG chart of tokens/s against link
# latency. Timings are the entry's (generation only, not the client's JVM start).
#
#   testnet/bench.sh [--latency 0,5,20] [--stages 4] [--prompts 5] [--max-tokens 128]
#                    [--modes off,k4,auto,adaptive] [--out DIR] [--model DIR --draft DIR] [--prompts-file F]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
latencies="0,5,20" stages=4 prompts=5 max_tokens=128 modes="off,k4,auto,adaptive" out="$repo/testnet/results"
prompts_file="$repo/models/heldout-prompts.json" models=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --latency) latencies="$2"; shift 2 ;;
    --stages) stages="$2"; shift 2 ;;
    --prompts) prompts="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --model|--draft) models+=("$1" "$2"); shift 2 ;;
    --prompts-file) prompts_file="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
raw="$out/raw.jsonl"; : >"$raw"
jar="$repo/cli/target/dsd.jar"
run="${TMPDIR:-/tmp}/dsd-bench-testnet"
trap '"$here/down.sh" --run "$run" >/dev/null 2>&1 || true' EXIT
# the held-out prompts the evaluation wrote, one per line, as JSON strings
mapfile -t texts < <(java -cp "$jar" dev.dsd.testnet.PromptList "$prompts_file" "$prompts")
IFS=, read -ra lats <<<"$latencies"
IFS=, read -ra mds <<<"$modes"
for lat in "${lats[@]}"; do
  "$here/up.sh" --stages "$stages" --latency "$lat" --run "$run" "${models[@]}" >"$out/up-$lat.log"
  entry=$(cat "$run/entry")
  for mode in "${mds[@]}"; do
    case "$mode" in
      off) flags=(--spec off) ;;
      auto) flags=(--spec auto) ;;
      adaptive) flags=(--spec auto --adaptive) ;;
      k*) flags=(--spec "${mode#k}") ;;
      *) echo "bench.sh: unknown mode $mode" >&2; exit 2 ;;
    esac
    for t in "${texts[@]}"; do
      prompt=$(printf '%s' "$t" | base64 -d)
      res=$(printf '%s' "$prompt" | java -jar "$jar" generate --peer "$entry" --max-tokens "$max_tokens" "${flags[@]}" --json -)
      printf '{"latency_ms":%s,"mode":"%s","result":%s}\n' "$lat" "$mode" "$res" >>"$raw"
    done
    echo "latency $lat ms mode $mode done" >&2
  done
  "$here/down.sh" --run "$run" >/dev/null
done
java -cp "$jar" dev.dsd.testnet.BenchReport "$raw" "$out/summary.json" "$out/tokens-per-second.png"
