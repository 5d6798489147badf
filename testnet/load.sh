#!/usr/bin/env bash
# Many users at once: brings a testnet up (up.sh: N stages, a draft node, an entry with the HTTP
# API), drives 1, 4, 16, 32 concurrent clients through the entry's OpenAI API (LoadBench: each
# client sends --requests streamed completions in turn), prints aggregate tok/s, p50/p99 time to
# first token and inter-token latency, the number refused and the CPU time each swarm process spent
# per token (from /proc: on shared cores a steadier figure than tok/s), appends JSON lines to
# OUT/load.jsonl and draws OUT/load-LABEL-*.png; then brings the testnet down.
#
#   testnet/load.sh [--stages 2] [--clients 1,4,16,32] [--requests 2] [--max-tokens 64]
#                   [--latency MS] [--label after] [--out DIR] [--model DIR --draft DIR]
#                   [--swarm CHECKOUT]   # run the swarm of another build (e.g. a commit before batching)
#                   [--temperature T]    # clients ask sampled completions at T (default 0: greedy)
#                   [--entry-draft]      # the entry drafts with its own draft model, no draft node
#                   [--weights f32|f16|q8|q4] [--start-timeout S]   # as up.sh takes them (a real shape's stages)
#                   [--warmup N] [--warmup-clients C]   # C clients send N requests each first, not counted (3, 1)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
stages=2 clients="1,4,16,32" requests=2 max_tokens=64 latency=0 label=run out="$repo/testnet/results" models=() swarm="$repo"
temperature=0 up_args=() warmup=3 warmup_clients=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stages) stages="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --latency) latency="$2"; shift 2 ;;
    --label) label="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --model|--draft) models+=("$1" "$2"); shift 2 ;;
    --swarm) swarm="$(cd "$2" && pwd)"; shift 2 ;;
    --temperature) temperature="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --warmup-clients) warmup_clients="$2"; shift 2 ;;
    --entry-draft) up_args+=(--entry-draft); shift ;;
    --weights|--start-timeout) up_args+=("$1" "$2"); shift 2 ;;   # passed to up.sh
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
run="${TMPDIR:-/tmp}/dsd-load-testnet-$$"
trap '"$swarm/testnet/down.sh" --run "$run" >/dev/null 2>&1 || true' EXIT
"$swarm/testnet/up.sh" --stages "$stages" --latency "$latency" --run "$run" ${models[@]+"${models[@]}"} \
  ${up_args[@]+"${up_args[@]}"} >"$out/up-load.log"
url=$(cat "$run/http")
java -cp "$repo/cli/target/dsd.jar" dev.dsd.testnet.LoadBench --url "$url" --clients "$clients" \
  --requests "$requests" --max-tokens "$max_tokens" --prompts "$repo/models/heldout-prompts.json" \
  --out "$out" --label "$label" --temperature "$temperature" \
  --warmup "$warmup" --warmup-clients "$warmup_clients" --pids "$run/pids"
