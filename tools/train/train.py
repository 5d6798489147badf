"""Trains the pycoder target (next-token cross-entropy) or distils the draft from the target
(KL to the target's next-token distribution on corpus windows and on the target's own continuations).

Resumable: state is saved to WORKDIR/<role>.pt every few minutes and at the end; rerunning the same
command continues where it stopped (a session's processes are killed when it ends). The learning-rate
schedule (linear warm-up, cosine decay to 10%) is fixed by --total-steps when given, else by the
throughput measured in the first steps and --budget-minutes.

  /usr/bin/python3 train.py --role target --workdir /root/dsd-train --budget-minutes 90
  /usr/bin/python3 train.py --role draft  --workdir /root/dsd-train --budget-minutes 30
"""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
from model import Config, Llama, generate_cached

SEED = 1234
TARGET = dict(vocab_size=4096, hidden_size=256, intermediate_size=704, num_layers=8, num_heads=8, num_kv_heads=2)
DRAFT = dict(vocab_size=4096, hidden_size=128, intermediate_size=384, num_layers=2, num_heads=4, num_kv_heads=2)


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def evaluate(model, held, seq, max_windows=None):
    model.eval()
    nll, n = 0.0, 0
    for w in data.eval_windows(held, seq, max_windows):
        logits = model(w[:, :-1])
        nll += F.cross_entropy(logits.view(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
        n += w.shape[1] - 1
    model.train()
    return math.exp(nll / n)


def load_model(path):
    st = torch.load(path)
    m = Llama(Config.from_dict(st["config"]))
    m.load_state_dict(st["model"])
    return m, st


def distill_batches(train, target, args, rng, gen, pool_size=64, refresh_every=8):
    """Half corpus windows, half the target's own continuations (greedy and sampled) of corpus prompts:
    what the draft must predict during speculation. Generating costs hundreds of sequential target
    steps, so continuations live in a pool that is refreshed one batch every few steps."""
    corpus_batches = data.batches(train, args.batch // 2, args.seq, rng)
    prompt_len = 32
    n_gen = args.batch - args.batch // 2
    pool = []

    def refresh():
        starts = rng.integers(0, len(train) - prompt_len, size=n_gen * 2)
        prompts = torch.from_numpy(np.stack([train[s:s + prompt_len] for s in starts]))
        temp = 0.0 if len(pool) % (4 * n_gen) < 2 * n_gen else 0.8
        seqs = generate_cached(target, prompts, args.seq + 1 - prompt_len, temperature=temp, generator=gen)
        pool.extend(seqs)
        del pool[:max(0, len(pool) - pool_size)]

    step = 0
    while True:
        if step % refresh_every == 0 or len(pool) < n_gen:
            refresh()
        step += 1
        a = next(corpus_batches)
        pick = rng.choice(len(pool), size=n_gen, replace=False)
        yield torch.cat([a, torch.stack([pool[i] for i in pick])], dim=0)


class Continuations:
    """Batches from the target's greedy continuations written by continuations.py. The set grows while
    that job runs, so the directory is re-read every few hundred steps; chunk 0 is kept out to measure
    top-1 agreement with the target on text the draft never trained on."""

    def __init__(self, workdir, batch, rng):
        self.dir = os.path.join(workdir, "cont")
        self.batch, self.rng = batch, rng
        self.chunks, self.names = [], set()
        self.valid = self._load(os.path.join(self.dir, "chunk-00000.npz"))
        self.refresh()

    @staticmethod
    def _load(path):
        z = np.load(path)
        return (torch.from_numpy(z["tokens"].astype(np.int64)), torch.from_numpy(z["top_ids"].astype(np.int64)),
                torch.from_numpy(z["top_logprobs"].astype(np.float32)))

    def refresh(self):
        for n in sorted(os.listdir(self.dir)):
            if n.endswith(".npz") and not n.endswith(".tmp.npz") and n != "chunk-00000.npz" and n not in self.names:
                self.chunks.append(self._load(os.path.join(self.dir, n)))
                self.names.add(n)

    def sequences(self):
        return sum(c[0].shape[0] for c in self.chunks)

    def next(self):
        rows = [(int(c), int(self.rng.integers(self.chunks[c][0].shape[0])))
                for c in self.rng.integers(len(self.chunks), size=self.batch)]
        return tuple(torch.stack([self.chunks[c][j][i] for c, i in rows]) for j in range(3))


def continuation_loss(model, tokens, top_ids, top_lp):
    """Cross-entropy to the target's greedy choice plus cross-entropy to its top-k distribution, on
    the generated positions only (the prompt is corpus text; its next tokens are not the target's)."""
    n = top_ids.shape[1]
    logp = model(tokens[:, :-1]).log_softmax(-1)[:, -n:]
    hard = F.nll_loss(logp.reshape(-1, logp.shape[-1]), tokens[:, -n:].reshape(-1))
    soft = -(top_lp.exp() * logp.gather(-1, top_ids)).sum(-1).mean()
    agree = (logp.argmax(-1) == tokens[:, -n:]).float().mean().item()
    return hard + soft, agree


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["target", "draft", "draft-seq"], required=True,
                    help="draft: online KL distillation; draft-seq: then sequence-level distillation on "
                         "continuations.py's output, starting from draft.pt")
    ap.add_argument("--workdir", default="/root/dsd-train")
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--budget-minutes", type=float, default=60)
    ap.add_argument("--total-steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--save-every-s", type=float, default=300)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    tok = args.tokenizer or os.path.join(args.workdir, "tokenizer.json")
    train, held = data.token_arrays(args.workdir, tok)
    ckpt = os.path.join(args.workdir, f"{args.role}.pt")
    cfg = Config(**(TARGET if args.role == "target" else DRAFT))
    model = Llama(cfg)
    if args.role == "draft-seq" and not os.path.exists(ckpt):
        model.load_state_dict(torch.load(os.path.join(args.workdir, "draft.pt"))["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    step, total, spent, tokens = 0, args.total_steps, 0.0, 0
    if os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, total, spent, tokens = st["step"], st["total"], st["spent"], st["tokens"]
        print(f"resume role={args.role} step={step}/{total} tokens={tokens} spent={spent/60:.1f}min", flush=True)
    rng = np.random.default_rng(SEED + step)
    gen = torch.Generator().manual_seed(SEED + step)
    target, cont = None, None
    if args.role == "draft-seq":
        cont = Continuations(args.workdir, args.batch, rng)
        batches = None
    elif args.role == "draft":
        target, _ = load_model(os.path.join(args.workdir, "target.pt"))
        target.eval()
        batches = distill_batches(train, target, args, rng, gen)
    else:
        batches = data.batches(train, args.batch, args.seq, rng)
    params = sum(p.numel() for p in model.parameters())
    print(f"start role={args.role} params={params} train_tokens={len(train)} held_tokens={len(held)} "
          f"threads={args.threads} batch={args.batch}x{args.seq if cont is None else cont.valid[0].shape[1] - 1}", flush=True)

    def save():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "config": cfg.to_dict(), "step": step,
                    "total": total, "spent": spent, "tokens": tokens}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    last_save = time.time()
    t_start = time.time()
    spent0 = spent
    while total == 0 or step < total:
        t0 = time.time()
        if cont is not None:
            if step % 200 == 0:
                cont.refresh()
            x, top_ids, top_lp = cont.next()
            loss, agree = continuation_loss(model, x, top_ids, top_lp)
        elif target is not None:
            x = next(batches)
            with torch.no_grad():
                soft = target(x[:, :-1]).log_softmax(-1)
            logp = model(x[:, :-1]).log_softmax(-1)
            # KL(target || draft): the draft matches the target's whole next-token distribution.
            loss = F.kl_div(logp.view(-1, logp.shape[-1]), soft.view(-1, soft.shape[-1]), log_target=True,
                            reduction="batchmean")
        else:
            x = next(batches)
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, max(total, args.warmup + 1), args.lr, args.warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.shape[0] * (x.shape[1] - 1)
        spent = spent0 + (time.time() - t_start)
        if total == 0 and step == 10:
            per_step = (time.time() - t_start) / 10
            total = int(args.budget_minutes * 60 / per_step)
            print(f"schedule total_steps={total} ({per_step:.2f}s/step)", flush=True)
        if step % 25 == 0:
            print(f"step={step}/{total} loss={loss.item():.4f} lr={opt.param_groups[0]['lr']:.2e} "
                  f"tok/s={x.shape[0]*(x.shape[1]-1)/(time.time()-t0):.0f} tokens={tokens} elapsed={spent/60:.1f}min", flush=True)
        if cont is not None and step % 100 == 0:
            with torch.no_grad():
                model.eval()
                _, held_agree = continuation_loss(model, *cont.valid)
                model.train()
            print(f"step={step} train_agree={agree:.4f} held_agree={held_agree:.4f} "
                  f"sequences={cont.sequences()}", flush=True)
        if time.time() - last_save > args.save_every_s:
            save()
            last_save = time.time()
    save()
    ppl = evaluate(model, held, args.seq)
    print(f"done role={args.role} steps={step} tokens={tokens} minutes={spent/60:.1f} held_out_ppl={ppl:.2f}", flush=True)


if __name__ == "__main__":
    main()
