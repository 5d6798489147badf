#!/usr/bin/env bash
# Regenerates the shipped model pair.
# Usage: tools/train/run_all.sh WORKDIR [TARGET_MINUTES] [DRAFT_MINUTES] [CONTINUATION_CHUNKS] [DRAFT_SEQ_STEPS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
work="${1:?workdir}"; tmin="${2:-65}"; dmin="${3:-15}"; chunks="${4:-600}"; seqsteps="${5:-3400}"
py=/usr/bin/python3
mkdir -p "$work"; cd "$here"
[[ -f "$work/tokenizer.json" ]] || $py train_tokenizer.py "$work/tokenizer.json"
$py corpus.py split.json
$py train.py --role target --workdir "$work" --budget-minutes "$tmin"
$py train.py --role draft --workdir "$work" --budget-minutes "$dmin"
# the target's own greedy continuations (one thread: generation gains nothing from a second core here),
# then sequence-level distillation of the draft on them
$py continuations.py "$work" --chunks "$chunks" --batch 32 --threads 1 >> "$work/cont.log"
$py train.py --role draft-seq --workdir "$work" --total-steps "$seqsteps" --batch 32 --lr 1e-3 --warmup 50 --threads 1
$py export.py "$work" "$repo"
$py evaluate.py "$work" "$repo"
