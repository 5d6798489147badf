"""Builds the draft's distillation set: the shipped target's own greedy continuations of training-split
prompts, with the target's top-k next-token log-probabilities at every predicted position.

Greedy speculative decoding accepts a draft token exactly when it equals the target's argmax in the
context the target itself produced, so the draft is trained on that very distribution (sequence-level
distillation) instead of on corpus text the target never writes. The target runs with F16-rounded
weights, as shipped, so the labels are what the Java runtime will compute. The top-k soft labels come
free with generation (the logits are computed anyway) and keep sampling-mode acceptance in view.

Chunks are written one file per batch, so the job is resumable and a trainer can read while it runs:

  /usr/bin/python3 continuations.py /root/dsd-train --chunks 400
"""
import argparse
import os
import time

import numpy as np
import torch

import data
from export import round_to_f16
from model import Cache, forward_cached
from train import SEED, load_model

PROMPT = 64
NEW = 192
TOPK = 8


@torch.no_grad()
def continue_greedy(target, prompts, new, topk):
    """Greedy continuation of prompts [B, P]; returns tokens [B, P+new] and the target's top-k ids and
    log-probabilities for the positions P-1 .. P+new-2 (each predicting the next generated token)."""
    cache = Cache(target.c.num_layers)
    logits = forward_cached(target, prompts, cache)[:, -1, :]
    out, ids, lps = [prompts], [], []
    for _ in range(new):
        lp = logits.float().log_softmax(-1)
        v, i = lp.topk(topk, dim=-1)
        ids.append(i)
        lps.append(v)
        nxt = i[:, :1]
        out.append(nxt)
        logits = forward_cached(target, nxt, cache)[:, -1, :]
    return torch.cat(out, 1), torch.stack(ids, 1), torch.stack(lps, 1)


def prompt_starts(train, rng, n):
    """Windows of PROMPT tokens inside one file (no <|endoftext|>), as the held-out prompts are."""
    starts = []
    while len(starts) < n:
        s = int(rng.integers(0, len(train) - PROMPT - 1))
        if not (train[s:s + PROMPT] == 0).any():
            starts.append(s)
    return starts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("--chunks", type=int, default=400)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, _ = data.token_arrays(args.workdir, os.path.join(args.workdir, "tokenizer.json"))
    target, _ = load_model(os.path.join(args.workdir, "target.pt"))
    target.eval()
    round_to_f16(target)
    out_dir = os.path.join(args.workdir, "cont")
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.time()
    for c in range(args.chunks):
        path = os.path.join(out_dir, f"chunk-{c:05d}.npz")
        if os.path.exists(path):
            continue
        rng = np.random.default_rng(SEED * 1000 + c)
        prompts = torch.from_numpy(np.stack([train[s:s + PROMPT] for s in prompt_starts(train, rng, args.batch)]))
        t0 = time.time()
        tokens, ids, lps = continue_greedy(target, prompts, NEW, TOPK)
        np.savez(path + ".tmp.npz", tokens=tokens.numpy().astype(np.uint16), top_ids=ids.numpy().astype(np.uint16),
                 top_logprobs=lps.numpy().astype(np.float16))
        os.replace(path + ".tmp.npz", path)
        dt = time.time() - t0
        print(f"chunk={c}/{args.chunks} sequences={args.batch} new_tokens={args.batch * NEW} seconds={dt:.1f} "
              f"tok/s={args.batch * NEW / dt:.0f} elapsed={(time.time() - t_start) / 60:.1f}min", flush=True)


if __name__ == "__main__":
    main()
