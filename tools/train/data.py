"""Token streams for training and evaluation: each split's files encoded and joined with id 0
(<|endoftext|>) between files, cached as uint16 arrays next to the checkpoints."""
import os

import numpy as np

import bpe
import corpus


def token_arrays(workdir, tokenizer_path):
    paths = [os.path.join(workdir, n) for n in ("train.u16", "held.u16")]
    if not all(os.path.exists(p) for p in paths):
        enc = bpe.load(tokenizer_path)
        train, held = corpus.split()
        for p, files in zip(paths, (train, held)):
            ids = []
            for _, text in files:
                ids.append(0)
                ids.extend(enc.encode(text))
            np.array(ids, dtype=np.uint16).tofile(p)
    return [np.fromfile(p, dtype=np.uint16).astype(np.int64) for p in paths]


def batches(arr, batch, seq, rng):
    """Random windows of seq+1 tokens."""
    import torch
    while True:
        starts = rng.integers(0, len(arr) - seq - 1, size=batch)
        x = np.stack([arr[s:s + seq + 1] for s in starts])
        yield torch.from_numpy(x)


def eval_windows(arr, seq, max_windows=None):
    """Contiguous non-overlapping windows over the whole held-out stream (deterministic)."""
    import torch
    n = (len(arr) - 1) // seq
    if max_windows:
        n = min(n, max_windows)
    for i in range(n):
        yield torch.from_numpy(arr[i * seq:i * seq + seq + 1][None, :])
