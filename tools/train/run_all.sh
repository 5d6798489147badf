#!/usr/bin/env bash
# Regenerates the shipped model pair. Usage: tools/train/run_all.sh WORKDIR [TARGET_MINUTES] [DRAFT_MINUTES]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
work="${1:?workdir}"; tmin="${2:-65}"; dmin="${3:-15}"
py=/usr/bin/python3
mkdir -p "$work"; cd "$here"
[[ -f "$work/tokenizer.json" ]] || $py train_tokenizer.py "$work/tokenizer.json"
$py corpus.py split.json
$py train.py --role target --workdir "$work" --budget-minutes "$tmin"
$py train.py --role draft --workdir "$work" --budget-minutes "$dmin"
$py export.py "$work" "$repo"
$py evaluate.py "$work" "$repo"
