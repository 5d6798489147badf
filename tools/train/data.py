"""Token streams for training and evaluation: each split's files (corpus.py's output) encoded and joined
with id 0 (<|endoftext|>) before each file, cached as uint16 arrays in WORKDIR, with the token range of
each held-out package (so evaluation can weigh packages equally instead of letting the largest decide)."""
import json
import os
import time

import numpy as np

import bpe
import corpus


def token_arrays(workdir, tokenizer_path):
    paths = [os.path.join(workdir, n) for n in ("train.u16", "held.u16")]
    ranges = os.path.join(workdir, "held.packages.json")
    if not all(os.path.exists(p) for p in paths + [ranges]):
        enc = bpe.load(tokenizer_path)
        stats = {}
        for p, split in zip(paths, ("train", "held")):
            t0 = time.time()
            ids, spans, nbytes = [], {}, 0
            for package, _, text in corpus.load_split(workdir, split):
                start = len(ids)
                ids.append(0)
                ids.extend(enc.encode(text))
                nbytes += len(text.encode())
                s = spans.setdefault(package, [start, start])
                s[1] = len(ids)
            np.array(ids, dtype=np.uint16).tofile(p + ".tmp")
            os.replace(p + ".tmp", p)
            stats[split] = {"tokens": len(ids), "bytes": nbytes, "bytes_per_token": round(nbytes / max(1, len(ids)), 3),
                            "seconds": round(time.time() - t0)}
            print(f"tokenized split={split} tokens={len(ids)} bytes={nbytes} t={time.time() - t0:.0f}s", flush=True)
            if split == "held":
                with open(ranges, "w") as f:
                    json.dump(spans, f, indent=1)
        with open(os.path.join(workdir, "tokens.json"), "w") as f:
            json.dump(stats, f, indent=1)
    # uint16 in memory (a quarter of int64); windows are widened to int64 as they are cut
    return [np.fromfile(p, dtype=np.uint16) for p in paths]


def held_package_ranges(workdir):
    with open(os.path.join(workdir, "held.packages.json")) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


class Windows:
    """Training windows of seq+1 tokens in a fixed order: the stream cut into non-overlapping windows
    (offset by `epoch` * 97 tokens so each epoch sees new boundaries), shuffled by a permutation
    seeded by (seed, epoch). The position (epoch, index) is the whole state: a resumed run continues
    with exactly the windows it would have seen."""

    def __init__(self, arr, batch, seq, seed, epoch=0, index=0):
        self.arr, self.batch, self.seq, self.seed = arr, batch, seq, seed
        self.epoch, self.index = epoch, index
        self._order()

    def _order(self):
        off = (self.epoch * 97) % self.seq
        n = (len(self.arr) - off - 1) // self.seq
        self.starts = off + self.seq * np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def state(self):
        return {"epoch": self.epoch, "index": self.index}

    def __iter__(self):
        return self

    def __next__(self):
        import torch
        rows = []
        while len(rows) < self.batch:
            if self.index >= len(self.starts):
                self.epoch, self.index = self.epoch + 1, 0
                self._order()
            s = int(self.starts[self.index])
            self.index += 1
            rows.append(self.arr[s:s + self.seq + 1])
        return torch.from_numpy(np.stack(rows).astype(np.int64))


def batches(arr, batch, seq, rng):
    """Random windows of seq+1 tokens."""
    import torch
    while True:
        starts = rng.integers(0, len(arr) - seq - 1, size=batch)
        x = np.stack([arr[s:s + seq + 1] for s in starts]).astype(np.int64)
        yield torch.from_numpy(x)


def eval_windows(arr, seq, max_windows=None, ranges=None, per_package=None):
    """Deterministic held-out windows: with `ranges` ({package: (start, end)}), up to per_package
    non-overlapping windows evenly spread over each package; else contiguous windows from the start."""
    import torch
    if ranges is not None:
        for _, (a, b) in sorted(ranges.items()):
            n = (b - a - 1) // seq
            if n <= 0:
                continue
            picks = np.linspace(0, n - 1, num=min(n, per_package)).round().astype(int) if per_package else range(n)
            for i in sorted(set(int(x) for x in picks)):
                s = a + i * seq
                yield torch.from_numpy(arr[s:s + seq + 1][None, :].astype(np.int64))
        return
    n = (len(arr) - 1) // seq
    if max_windows:
        n = min(n, max_windows)
    for i in range(n):
        yield torch.from_numpy(arr[i * seq:i * seq + seq + 1][None, :].astype(np.int64))
