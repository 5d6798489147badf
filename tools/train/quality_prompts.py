"""Prompts with the reference line that follows them, for `dsd bench quality` (adaptive verification).

Two sets, written to one JSON file:
  - "calibration": from training files (the standard library files that are training data under both
    splits: split-stdlib-v1.json's training files, which the shipped pair was trained on, and the stdlib
    package that tools/train/split.json always keeps in training). The adaptive threshold is chosen on these.
  - "heldout": from the held-out packages of tools/train/split.json (never seen by either pair); the
    quality report is measured on these.

Each prompt ends just before a line break (so the tokenizer sees the break and the next line's
indentation together, as in training); "reference" is the next line of the file (non-blank, without
its newline): a completion matches when it starts with the break, then exactly that line. The prompt is the whole lines
before it, as many as fit PROMPT_TOKENS tokens of the shipped tokenizer (at least MIN_PROMPT_TOKENS).
Files are drawn like evaluate.py's prompts: a package uniformly, then a file, then a line (seeded).

    /usr/bin/python3 quality_prompts.py --work /work/dsd-train --out ../../models/quality-prompts.json
"""
import argparse
import json
import os

import numpy as np

import bpe

PROMPT_TOKENS = 64
MIN_PROMPT_TOKENS = 24
MAX_REFERENCE_CHARS = 100
STDLIB_PACKAGE = "libpython3.11-stdlib"
STDLIB_ROOT = "/usr/lib/python3.11/"


def read_split(path, keep):
    """[(package, path, text)] of a corpus/*.jsonl file, only rows `keep(package, path)` accepts."""
    out = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if keep(d["package"], d["path"]):
                out.append((d["package"], d["path"], d["text"]))
    return out


def prompt_at(enc, lines, j):
    """(prompt, reference) ending before line j, or None where line j or the lines before do not fit."""
    ref = lines[j].rstrip("\n")
    if not ref.strip() or len(ref) > MAX_REFERENCE_CHARS or "\t" in ref:
        return None
    start, tokens = j, 0
    while start > 0:
        n = len(enc.encode(lines[start - 1]))
        if tokens + n > PROMPT_TOKENS:
            break
        tokens += n
        start -= 1
    if tokens < MIN_PROMPT_TOKENS:
        return None
    return "".join(lines[start:j])[:-1], ref  # lines[j - 1] ends with its "\n"


def draw(files, enc, n, seed):
    rng = np.random.default_rng(seed)
    by_pkg = {}
    for pkg, path, text in files:
        by_pkg.setdefault(pkg, []).append((path, text))
    pkgs = sorted(by_pkg)
    out, seen = [], set()
    while len(out) < n:
        pkg = pkgs[rng.integers(len(pkgs))] if len(pkgs) > 1 else pkgs[0]
        path, text = by_pkg[pkg][rng.integers(len(by_pkg[pkg]))]
        lines = text.splitlines(keepends=True)
        if len(lines) < 4:
            continue
        j = int(rng.integers(1, len(lines)))
        if (path, j) in seen:
            continue
        got = prompt_at(enc, lines, j)
        if got is None:
            continue
        seen.add((path, j))
        out.append({"source": f"{pkg}:{path}:{j + 1}", "prompt": got[0], "reference": got[1]})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="corpus.py's WORKDIR (reads corpus/train.jsonl, held.jsonl)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--calibration", type=int, default=80)
    ap.add_argument("--heldout", type=int, default=80)
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    enc = bpe.load(os.path.join(here, "..", "..", "models", "pycoder-target", "tokenizer.json"))
    v1 = json.load(open(os.path.join(here, "split-stdlib-v1.json")))
    v1_held = set(v1["held_out"])

    def stdlib_training(pkg, path):
        return pkg == STDLIB_PACKAGE and path.startswith(STDLIB_ROOT) and path[len(STDLIB_ROOT):] not in v1_held

    train = read_split(os.path.join(args.work, "corpus", "train.jsonl"), stdlib_training)
    held = read_split(os.path.join(args.work, "corpus", "held.jsonl"), lambda pkg, path: True)
    # the stdlib is one package: draw its files uniformly by making each top-level module a "package"
    train = [(path[len(STDLIB_ROOT):].split("/")[0], path, text) for _, path, text in train]
    doc = {
        "source": ("tools/train/quality_prompts.py: whole-line prompts of <= %d tokens (without the last line break) and the next line; "
                   "calibration from stdlib training files (split-stdlib-v1.json and split.json), seed 11; "
                   "heldout from the held-out packages of split.json, seed 7") % PROMPT_TOKENS,
        "calibration": draw(train, enc, args.calibration, 11),
        "heldout": draw(held, enc, args.heldout, 7),
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{len(doc['calibration'])} calibration and {len(doc['heldout'])} held-out prompts -> {args.out}")


if __name__ == "__main__":
    main()
