"""Builds the draft's distillation set: the target's own continuations of training-split prompts, greedy
(--mode greedy, WORKDIR/cont/) or sampled at temperature 0.8 with top-p 0.95 (--mode sampled,
WORKDIR/cont-sampled/), with the target's top-k next-token log-probabilities at every predicted position.

Greedy speculative decoding accepts a draft token exactly when it equals the target's argmax in the
context the target itself produced, so the draft is trained on that very distribution (sequence-level
distillation) instead of on corpus text the target never writes. The target runs with F16-rounded
weights, as shipped, so the labels are what the Java runtime will compute. The top-k soft labels come
free with generation (the logits are computed anyway) and keep sampling-mode acceptance in view.

Speculative sampling accepts a draft token with probability min(1, p/q), so a draft for sampled
generation must match the target's (temperature, top-p) distribution in the contexts sampling produces:
the sampled set supplies those contexts, and train.py --role draft-dist computes the target's full
next-token distribution on them (one parallel forward pass per batch, cheaper than storing 4096
probabilities per position).

Chunks are written one file per batch, so the job is resumable and a trainer can read while it runs:

  /usr/bin/python3 continuations.py /work/dsd-train --chunks 400
  /usr/bin/python3 continuations.py /work/dsd-train --chunks 400 --mode sampled
"""
import argparse
import os
import time

import numpy as np
import torch

import data
from export import round_to_f16
from model import Cache, forward_cached, sample_next
from train import SEED, load_model

PROMPT = 64
NEW = 192
TOPK = 8
TEMPERATURE = 0.8
TOP_P = 0.95
MODES = {"greedy": ("cont", 0), "sampled": ("cont-sampled", 500_000)}  # output dir, seed offset


@torch.no_grad()
def continue_greedy(target, prompts, new, topk, temperature=0.0, top_p=1.0, generator=None):
    """Continuation of prompts [B, P], greedy or sampled (temperature > 0, top_p); returns tokens
    [B, P+new] and the target's top-k ids and (temperature 1) log-probabilities for the positions
    P-1 .. P+new-2 (each predicting the next generated token)."""
    cache = Cache(target.c.num_layers)
    logits = forward_cached(target, prompts, cache)[:, -1, :]
    out, ids, lps = [prompts], [], []
    for _ in range(new):
        lp = logits.float().log_softmax(-1)
        v, i = lp.topk(topk, dim=-1)
        ids.append(i)
        lps.append(v)
        nxt = i[:, :1] if temperature <= 0 else sample_next(logits, temperature, top_p, generator)
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
    ap.add_argument("--mode", choices=sorted(MODES), default="greedy")
    ap.add_argument("--new", type=int, default=NEW, help="new tokens per sequence")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, _ = data.token_arrays(args.workdir, os.path.join(args.workdir, "tokenizer.json"))
    target, _ = load_model(os.path.join(args.workdir, "target.pt"))
    target.eval()
    round_to_f16(target)
    sub, seed_offset = MODES[args.mode]
    out_dir = os.path.join(args.workdir, sub)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.time()
    for c in range(args.chunks):
        path = os.path.join(out_dir, f"chunk-{c:05d}.npz")
        if os.path.exists(path):
            continue
        rng = np.random.default_rng(SEED * 1000 + seed_offset + c)
        gen = torch.Generator().manual_seed(SEED * 1000 + seed_offset + c)
        prompts = torch.from_numpy(np.stack([train[s:s + PROMPT] for s in prompt_starts(train, rng, args.batch)]).astype(np.int64))
        t0 = time.time()
        temp, top_p = (0.0, 1.0) if args.mode == "greedy" else (TEMPERATURE, TOP_P)
        tokens, ids, lps = continue_greedy(target, prompts, args.new, TOPK, temp, top_p, gen)
        np.savez(path + ".tmp.npz", tokens=tokens.numpy().astype(np.uint16), top_ids=ids.numpy().astype(np.uint16),
                 top_logprobs=lps.numpy().astype(np.float16))
        os.replace(path + ".tmp.npz", path)
        dt = time.time() - t0
        print(f"mode={args.mode} chunk={c}/{args.chunks} sequences={args.batch} new_tokens={args.batch * args.new} seconds={dt:.1f} "
              f"tok/s={args.batch * args.new / dt:.0f} elapsed={(time.time() - t_start) / 60:.1f}min", flush=True)


if __name__ == "__main__":
    main()
