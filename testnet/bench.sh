#!/usr/bin/env bash
# The pipeline benchmark across real processes: for each latency, brings a testnet up (up.sh),
# hands held-out prompts to its entry through `dsd generate --peer` under each decoding mode, and
# brings it down; then prints a table, writes JSON and draws a PNG chart of tokens/s against link
# latency. Timings are the entry's: route, session setup on every stage, prefill and decoding (not
# the client's JVM start). Greedy and sampled (T=0.8, top-p 0.95) runs side by side; at each latency
# the (sampling, mode) runs go in an order shuffled with --order-seed, printed on stderr.
#
#   testnet/bench.sh [--latency 0,5,20] [--stages 4] [--prompts 5] [--max-tokens 128]
#                    [--modes off,k4,auto,adaptive] [--sampling greedy,sampled] [--order-seed 1]
#                    [--out DIR] [--model DIR --draft DIR] [--prompts-file F]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
latencies="0,5,20" stages=4 prompts=5 max_tokens=128 modes="off,k4,auto,adaptive" out="$repo/testnet/results"
samplings="greedy,sampled" order_seed=1
prompts_file="$repo/models/heldout-prompts.json" models=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --latency) latencies="$2"; shift 2 ;;
    --stages) stages="$2"; shift 2 ;;
    --prompts) prompts="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --sampling) samplings="$2"; shift 2 ;;
    --order-seed) order_seed="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --model|--draft) models+=("$1" "$2"); shift 2 ;;
    --prompts-file) prompts_file="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
IFS=, read -ra sps <<<"$samplings"
runs=()
for sp in "${sps[@]}"; do for mode in "${mds[@]}"; do runs+=("$sp:$mode"); done; done
for lat in "${lats[@]}"; do
  "$here/up.sh" --stages "$stages" --latency "$lat" --run "$run" "${models[@]}" >"$out/up-$lat.log"
  entry=$(cat "$run/entry")
  # a seeded shuffle (awk's rand), different at each latency, so no mode always runs first
  mapfile -t order < <(printf '%s\n' "${runs[@]}" | awk -v s="$order_seed$lat" 'BEGIN{srand(s)} {print rand() "\t" $0}' \
    | sort -n | cut -f2-)
  echo "latency $lat ms: order ${order[*]} (seed $order_seed)" >&2
  for spmode in "${order[@]}"; do
    sp="${spmode%%:*}" mode="${spmode#*:}"
    case "$sp" in
      greedy) sflags=() ;;
      sampled) sflags=(--temperature 0.8 --top-p 0.95) ;;
      *) echo "bench.sh: unknown sampling $sp" >&2; exit 2 ;;
    esac
    case "$mode" in
      off) flags=(--spec off) ;;
      auto) flags=(--spec auto) ;;
      adaptive) flags=(--spec auto --adaptive) ;;
      k*) flags=(--spec "${mode#k}") ;;
      *) echo "bench.sh: unknown mode $mode" >&2; exit 2 ;;
    esac
    i=0
    for t in "${texts[@]}"; do
      i=$((i + 1))
      prompt=$(printf '%s' "$t" | base64 -d)
      res=$(printf '%s' "$prompt" | java -jar "$jar" generate --peer "$entry" --max-tokens "$max_tokens" "${flags[@]}" \
        "${sflags[@]}" --seed "$i" --json -)
      printf '{"latency_ms":%s,"sampling":"%s","mode":"%s","result":%s}\n' "$lat" "$sp" "$mode" "$res" >>"$raw"
    done
    echo "latency $lat ms $sp $mode done" >&2
  done
  "$here/down.sh" --run "$run" >/dev/null
done
java -cp "$jar" dev.dsd.testnet.BenchReport "$raw" "$out/summary.json" "$out/tokens-per-second.png"
