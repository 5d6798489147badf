"""Trains the pycoder target (next-token cross-entropy) or distils the draft from the target.

Roles:
  target      next-token cross-entropy on the training split (corpus.py + data.py)
  draft       online KL to the target's next-token distribution on corpus windows and on a pool of the
              target's own greedy and sampled continuations
  draft-seq   from draft.pt: cross-entropy to the target's greedy token + to its top-8 distribution, on the
              greedy continuations continuations.py wrote (WORKDIR/cont)
  draft-dist  from draft.pt (or fresh): on the target's greedy (WORKDIR/cont) and sampled (T=0.8, top-p
              0.95, WORKDIR/cont-sampled) continuations, full-distribution KL(p || q) between the target's
              and the draft's temperature-0.8, top-p 0.95 distributions (the target's computed in one
              parallel pass per batch), plus cross-entropy to the target's greedy token on greedy rows

Resumable across sessions: model, optimizer, step, schedule, data position and RNG states are saved
to WORKDIR/<role>.pt every --save-every-s seconds (default 10 minutes) and at the end; rerunning the
same command continues exactly where the last save was. Schedule: linear warm-up, then either cosine
decay to 10% (--schedule cosine) or warmup-stable-decay (--schedule wsd: constant until the last
--decay-frac of --total-steps, then linear decay to 10%); with wsd, --total-steps may be raised on a
resumed run (raised or lowered) while it is still in the stable phase under both lengths, so a run can be
extended session by session and its decay started when the compute is there.

  nice -n 19 /usr/bin/python3 train.py --role target --workdir /work/dsd-train --threads 1 \\
      --schedule wsd --total-steps 20000
"""
import argparse
import math
import os
import signal
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
from model import Config, Llama, generate_cached, processed_probs

SEED = 1234
# 8 layers x 384 (head_dim 64, GQA 6/2): 14.2 M parameters, 28.3 MB in F16, twice the shipped
# target (8 x 256, 6.69 M): the largest that a few CPU-days can train past the shipped one (train.py's
# README section "Target size" has the measured step times that decided it).
TARGET = dict(vocab_size=4096, hidden_size=384, intermediate_size=1024, num_layers=8, num_heads=6, num_kv_heads=2)
DRAFT = dict(vocab_size=4096, hidden_size=128, intermediate_size=384, num_layers=2, num_heads=4, num_kv_heads=2)
TEMPERATURE, TOP_P = 0.8, 0.95  # the sampling setting the draft-dist role matches


def lr_at(step, total, peak, warmup, schedule="cosine", decay_frac=0.2):
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "wsd":
        decay_start = total - int(decay_frac * total)
        if step < decay_start:
            return peak
        p = min(1.0, (step - decay_start) / max(1, total - decay_start))
        return peak * (1.0 - 0.9 * p)
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def evaluate(model, held, seq, max_windows=None, ranges=None, per_package=None):
    """Perplexity over held-out windows (see data.eval_windows); returns (ppl, tokens)."""
    was = model.training
    model.eval()
    nll, n = 0.0, 0
    for w in data.eval_windows(held, seq, max_windows, ranges, per_package):
        logits = model(w[:, :-1])
        nll += F.cross_entropy(logits.view(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
        n += w.shape[1] - 1
    model.train(was)
    return math.exp(nll / n), n


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
        prompts = torch.from_numpy(np.stack([train[s:s + prompt_len] for s in starts]).astype(np.int64))
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
    """Batches from the target's continuations written by continuations.py (WORKDIR/<sub>). The set
    grows while that job runs, so the directory is re-read every few hundred steps; chunk 0 is kept out
    to measure agreement with the target on text the draft never trained on."""

    def __init__(self, workdir, batch, rng, sub="cont"):
        self.dir = os.path.join(workdir, sub)
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
        if not self.chunks:
            raise SystemExit(f"{self.dir} holds only chunk 0 (kept out for validation): run continuations.py longer")

    def sequences(self):
        return sum(c[0].shape[0] for c in self.chunks)

    def next(self, batch=None):
        rows = [(int(c), int(self.rng.integers(self.chunks[c][0].shape[0])))
                for c in self.rng.integers(len(self.chunks), size=batch or self.batch)]
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


def dist_loss(draft, target, tokens, n_new, greedy_rows, temperature=TEMPERATURE, top_p=TOP_P):
    """Full-distribution KL(p || q) at the sampling setting, p the target's processed distribution
    (temperature, top-p) and q the draft's tempered distribution, on the n_new generated positions;
    plus cross-entropy to the target's argmax on rows from greedy continuations (greedy acceptance).
    Returns (loss, greedy agreement, expected sampled acceptance sum(min(p, q')) with q' the draft's
    processed distribution: the probability speculative sampling accepts a draft token)."""
    with torch.no_grad():
        t_logits = target(tokens[:, :-1])[:, -n_new:].float()
        p = processed_probs(t_logits, temperature, top_p)
    d_logits = draft(tokens[:, :-1])[:, -n_new:]
    logq = (d_logits / temperature).log_softmax(-1)
    kl = (p * (p.clamp_min(1e-12).log() - logq)).sum(-1).mean()
    loss = kl
    if greedy_rows.any():
        g = d_logits[greedy_rows]
        loss = loss + F.cross_entropy(g.reshape(-1, g.shape[-1]), t_logits[greedy_rows].argmax(-1).reshape(-1))
    with torch.no_grad():
        agree = (d_logits.argmax(-1) == t_logits.argmax(-1)).float().mean().item()
        q = processed_probs(d_logits.detach(), temperature, top_p)
        accept = torch.minimum(p, q).sum(-1).mean().item()
    return loss, agree, accept


class DistBatches:
    """Half greedy, half sampled continuations per batch; `greedy` marks the greedy rows."""

    def __init__(self, workdir, batch, rng):
        self.greedy = Continuations(workdir, batch // 2, rng, "cont")
        self.sampled = Continuations(workdir, batch - batch // 2, rng, "cont-sampled")
        self.n_new = self.greedy.valid[1].shape[1]
        if self.sampled.valid[1].shape[1] != self.n_new:
            raise SystemExit("greedy and sampled continuations differ in length: generate both with the same --new")

    def refresh(self):
        self.greedy.refresh()
        self.sampled.refresh()

    def next(self):
        g, s = self.greedy.next()[0], self.sampled.next()[0]
        mask = torch.zeros(g.shape[0] + s.shape[0], dtype=torch.bool)
        mask[:g.shape[0]] = True
        return torch.cat([g, s]), mask

    def valid(self, rows=32):
        g, s = self.greedy.valid[0][:rows // 2], self.sampled.valid[0][:rows // 2]
        mask = torch.zeros(g.shape[0] + s.shape[0], dtype=torch.bool)
        mask[:g.shape[0]] = True
        return torch.cat([g, s]), mask

    def sequences(self):
        return self.greedy.sequences() + self.sampled.sequences()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["target", "draft", "draft-seq", "draft-dist"], required=True)
    ap.add_argument("--workdir", default="/work/dsd-train")
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--budget-minutes", type=float, default=60)
    ap.add_argument("--total-steps", type=int, default=0)
    ap.add_argument("--schedule", choices=["cosine", "wsd"], default="cosine")
    ap.add_argument("--decay-frac", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--save-every-s", type=float, default=600)
    ap.add_argument("--micro-batch", type=int, default=0, help="target: rows per forward/backward pass (0: the whole batch)")
    ap.add_argument("--stop-after", type=int, default=0, help="save and exit after this many steps in this process")
    ap.add_argument("--eval-every", type=int, default=100, help="steps between small held-out evaluations")
    ap.add_argument("--config", choices=["default", "tiny"], default="default",
                    help="tiny: a 2-layer x 64 model of either role, for a quick end-to-end test of the scripts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    tok = args.tokenizer or os.path.join(args.workdir, "tokenizer.json")
    train, held = data.token_arrays(args.workdir, tok)
    ranges = data.held_package_ranges(args.workdir)
    ckpt = os.path.join(args.workdir, f"{args.role}.pt")
    cfg_d = TARGET if args.role == "target" else DRAFT
    if args.config == "tiny":
        cfg_d = dict(vocab_size=4096, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2, num_kv_heads=1)
    cfg = Config(**cfg_d)
    model = Llama(cfg)
    start_from = os.path.join(args.workdir, "draft.pt")
    if args.role in ("draft-seq", "draft-dist") and not os.path.exists(ckpt) and os.path.exists(start_from):
        st0 = torch.load(start_from)
        cfg = Config.from_dict(st0["config"])
        model = Llama(cfg)
        model.load_state_dict(st0["model"])
        print(f"init from {start_from}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    step, total, spent, tokens = 0, args.total_steps, 0.0, 0
    rng = np.random.default_rng(SEED)
    gen = torch.Generator().manual_seed(SEED)
    st = None
    if os.path.exists(ckpt):
        st = torch.load(ckpt)
        if st["config"] != cfg.to_dict():
            cfg = Config.from_dict(st["config"])
            model = Llama(cfg)
            opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, total, spent, tokens = st["step"], st["total"], st["spent"], st["tokens"]
        if st.get("schedule", args.schedule) != args.schedule:
            raise SystemExit(f"{ckpt} was trained with --schedule {st['schedule']}: resume with the same schedule")
        if args.schedule == "wsd" and args.total_steps and args.total_steps != total:
            # a new length is fine while both schedules still agree on the constant learning rate here
            for t in (total, args.total_steps):
                if step >= t - int(args.decay_frac * t):
                    raise SystemExit(f"step {step} is in the decay phase of {t} steps: cannot change --total-steps")
            print(f"schedule total_steps {total} -> {args.total_steps}", flush=True)
            total = args.total_steps
        if "rng" in st:
            rng.bit_generator.state = st["rng"]
            gen.set_state(st["gen"])
            torch.set_rng_state(st["torch_rng"])
        else:  # checkpoints from before the state was saved
            rng = np.random.default_rng(SEED + step)
            gen = torch.Generator().manual_seed(SEED + step)
        print(f"resume role={args.role} step={step}/{total} tokens={tokens} spent={spent/60:.1f}min", flush=True)
    target, cont, dist, windows = None, None, None, None
    if args.role == "draft-seq":
        cont = Continuations(args.workdir, args.batch, rng)
    elif args.role == "draft-dist":
        dist = DistBatches(args.workdir, args.batch, rng)
    if args.role in ("draft", "draft-dist"):
        target, _ = load_model(os.path.join(args.workdir, "target.pt"))
        target.eval()
        from export import round_to_f16
        round_to_f16(target)  # the teacher as shipped
    if args.role == "draft":
        batches = distill_batches(train, target, args, rng, gen)
    elif args.role == "target":
        ws = (st or {}).get("windows", {"epoch": 0, "index": 0})
        windows = data.Windows(train, args.batch, args.seq, SEED, ws["epoch"], ws["index"])
    params = sum(p.numel() for p in model.parameters())
    print(f"start role={args.role} params={params} train_tokens={len(train)} held_tokens={len(held)} "
          f"threads={args.threads} batch={args.batch} seq={args.seq} schedule={args.schedule}", flush=True)

    def save():
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "config": cfg.to_dict(), "step": step,
                 "total": total, "spent": spent, "tokens": tokens, "rng": rng.bit_generator.state,
                 "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "schedule": args.schedule,
                 "args": vars(args)}
        if windows is not None:
            state["windows"] = windows.state()
        torch.save(state, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)
        print(f"saved {ckpt} step={step} tokens={tokens}", flush=True)

    last_save = last_print = time.time()
    last_cpu = (time.process_time(), step)
    t_start = time.time()
    spent0 = spent
    loss_sum, loss_n = 0.0, 0
    first_step = step
    stop = []  # SIGTERM (a session ending) saves after the current step instead of losing up to save-every-s
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    while total == 0 or step < total:
        if stop or (args.stop_after and step - first_step >= args.stop_after):
            save()
            print(f"stopped role={args.role} step={step}/{total} ({stop[0] if stop else '--stop-after'})", flush=True)
            return
        t0 = time.time()
        extra = ""
        if cont is not None:
            if step % 200 == 0:
                cont.refresh()
            x, top_ids, top_lp = cont.next()
            loss, agree = continuation_loss(model, x, top_ids, top_lp)
        elif dist is not None:
            if step % 200 == 0:
                dist.refresh()
            x, greedy_rows = dist.next()
            loss, agree, accept = dist_loss(model, target, x, dist.n_new, greedy_rows)
            extra = f" agree={agree:.3f} accept_T0.8={accept:.3f}"
        elif target is not None:
            x = next(batches)
            with torch.no_grad():
                soft = target(x[:, :-1]).log_softmax(-1)
            logp = model(x[:, :-1]).log_softmax(-1)
            # KL(target || draft): the draft matches the target's whole next-token distribution.
            loss = F.kl_div(logp.view(-1, logp.shape[-1]), soft.view(-1, soft.shape[-1]), log_target=True,
                            reduction="batchmean")
        else:
            x = next(windows)
        opt.zero_grad(set_to_none=True)
        if windows is not None:
            # micro-batches: the same gradient as one batch, with the activations of --micro-batch rows
            # at a time (8 x 512 at once peaks at 3.6 GB on the 8 x 384 target)
            loss = 0.0
            for xs in x.split(args.micro_batch or x.shape[0]):
                logits = model(xs[:, :-1])
                part = F.cross_entropy(logits.view(-1, logits.shape[-1]), xs[:, 1:].reshape(-1)) * (xs.shape[0] / x.shape[0])
                part.backward()
                loss += part.detach()
        else:
            loss.backward()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, max(total, args.warmup + 1), args.lr, args.warmup, args.schedule, args.decay_frac)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.shape[0] * (x.shape[1] - 1)
        spent = spent0 + (time.time() - t_start)
        loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        if total == 0 and step == 10:
            per_step = (time.time() - t_start) / 10
            total = int(args.budget_minutes * 60 / per_step)
            print(f"schedule total_steps={total} ({per_step:.2f}s/step)", flush=True)
        if step % 25 == 0 or step == total or time.time() - last_print > 300:
            # tok/s: wall clock, which on a shared machine says more about the load than about the model;
            # cpu_s/step: this process's CPU time, the figure to plan CPU hours with
            cpu = time.process_time()
            print(f"step={step}/{total} loss={loss_sum / loss_n:.4f} lr={opt.param_groups[0]['lr']:.2e} "
                  f"tok/s={x.shape[0]*(x.shape[1]-1)/(time.time()-t0):.0f} "
                  f"cpu_s/step={(cpu - last_cpu[0]) / (step - last_cpu[1]):.1f} tokens={tokens} "
                  f"elapsed={spent/60:.1f}min{extra}", flush=True)
            loss_sum, loss_n = 0.0, 0
            last_print, last_cpu = time.time(), (cpu, step)
        if cont is not None and step % 100 == 0:
            with torch.no_grad():
                model.eval()
                _, held_agree = continuation_loss(model, *cont.valid)
                model.train()
            print(f"step={step} train_agree={agree:.4f} held_agree={held_agree:.4f} "
                  f"sequences={cont.sequences()}", flush=True)
        if dist is not None and step % 100 == 0:
            with torch.no_grad():
                model.eval()
                vx, vmask = dist.valid()
                _, v_agree, v_accept = dist_loss(model, target, vx, dist.n_new, vmask)
                model.train()
            print(f"step={step} held_agree={v_agree:.4f} held_accept_T0.8={v_accept:.4f} "
                  f"sequences={dist.sequences()}", flush=True)
        if args.role == "target" and args.eval_every and step % args.eval_every == 0:
            ppl, n = evaluate(model, held, 256, ranges=ranges, per_package=1)
            print(f"step={step} held_ppl_small={ppl:.2f} (one 256-token window per held-out package, {n} tokens)",
                  flush=True)
        if time.time() - last_save > args.save_every_s:
            save()
            last_save = time.time()
    save()
    ppl, n = evaluate(model, held, args.seq, ranges=ranges, per_package=8)
    print(f"done role={args.role} steps={step} tokens={tokens} minutes={spent/60:.1f} held_out_ppl={ppl:.2f} "
          f"({n} tokens)", flush=True)


if __name__ == "__main__":
    main()
