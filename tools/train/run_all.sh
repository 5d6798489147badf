#!/usr/bin/env bash
# Regenerates the shipped model pair, step by step; every step resumes from what WORKDIR holds, so the
# script can be rerun after a session ends (the target alone needs many CPU hours: see README.md).
# Usage: tools/train/run_all.sh WORKDIR [TARGET_STEPS] [DRAFT_MINUTES] [CONTINUATION_CHUNKS] [DRAFT_DIST_STEPS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
work="${1:?workdir}"; tsteps="${2:-20000}"; dmin="${3:-15}"; chunks="${4:-300}"; diststeps="${5:-3000}"
py=/usr/bin/python3
mkdir -p "$work"; cd "$here"
$py corpus.py install
[[ -f "$work/tokenizer.json" ]] || cp "$repo/models/pycoder-target/tokenizer.json" "$work/tokenizer.json"
[[ -f "$work/corpus/manifest.json" ]] || $py corpus.py build "$work"
$py train.py --role target --workdir "$work" --threads 1 --schedule wsd --total-steps "$tsteps" \
  --batch 8 --micro-batch 4 --seq 512 --lr 1e-3 --warmup 200
$py train.py --role draft --workdir "$work" --budget-minutes "$dmin"
# the target's own continuations of training prompts, greedy and sampled (T=0.8, top-p 0.95), then the
# draft distilled on them by full-distribution KL at the sampling setting + greedy cross-entropy
$py continuations.py "$work" --chunks "$chunks" --batch 32 --threads 1 --mode greedy >> "$work/cont.log"
$py continuations.py "$work" --chunks "$chunks" --batch 32 --threads 1 --mode sampled >> "$work/cont.log"
$py train.py --role draft-dist --workdir "$work" --total-steps "$diststeps" --batch 32 --lr 1e-3 --warmup 50 --threads 1
$py export.py "$work" "$repo"
$py evaluate.py ship "$work" "$repo"
