#!/usr/bin/env bash
# Starts or resumes the target's training in the background, at the lowest CPU priority on one thread,
# from whatever WORKDIR already holds: installs the corpus packages, builds and tokenizes the corpus and
# copies the shipped tokenizer only where missing, then continues WORKDIR/target.pt (model, optimizer,
# schedule, data position, RNG) or starts it. Progress: WORKDIR/target.log.
# Usage: [THREADS=n] tools/train/train_target.sh [WORKDIR] [TOTAL_STEPS]
# THREADS (default 1): torch threads; at nice 19 more threads only soak up otherwise idle cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
work="${1:-/work/dsd-train}"; steps="${2:-20000}"
py=/usr/bin/python3
mkdir -p "$work"; cd "$here"
if pgrep -f "train.py --role target --workdir $work" >/dev/null; then
  echo "already running: $(pgrep -af "train.py --role target --workdir $work")"; exit 0
fi
missing=$(for p in $(grep -v '^#' packages.txt); do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [[ -n "$missing" ]] || ! $py -c 'import torch, numpy, regex' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    python3-torch python3-numpy python3-regex libopenblas0-openmp >> "$work/setup.log" 2>&1
  $py corpus.py install >> "$work/setup.log" 2>&1
fi
[[ -f "$work/tokenizer.json" ]] || cp "$repo/models/pycoder-target/tokenizer.json" "$work/tokenizer.json"
[[ -f "$work/corpus/manifest.json" ]] || nice -n 19 $py corpus.py build "$work" >> "$work/setup.log" 2>&1
threads="${THREADS:-1}"
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
nohup nice -n 19 $py train.py --role target --workdir "$work" --threads "$threads" --schedule wsd \
  --total-steps "$steps" --batch 8 --micro-batch 4 --seq 512 --lr 1e-3 --warmup 200 >> "$work/target.log" 2>&1 &
echo "started pid=$! log=$work/target.log"
