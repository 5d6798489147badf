"""Measures a target/draft pair on the held-out packages (corpus.py's split), all with F16-rounded
weights as shipped:
- held-out perplexity and bits per byte of each model: up to 8 non-overlapping 512-token windows per
  held-out package, evenly spread, so every package weighs about the same;
- on N_PROMPTS held-out prompts (64 tokens, a package drawn uniformly, then a file, then a position),
  NEW_TOKENS new tokens each, speculative decoding simulated exactly with window k=4:
  - greedy: acceptance (accepted / proposed draft tokens) and distinct 4-grams of the output token ids
    (distinct / total 4-grams of the 96 new tokens, averaged over prompts; the output is the target's
    own greedy text, which speculation reproduces exactly);
  - sampled at temperature 0.8, top-p 0.95 (speculative sampling: accept with probability
    min(1, p/q), else resample from max(0, p - q)): acceptance and distinct 4-grams.

  # any pair: checkpoints (.pt) or exported HF directories; writes a JSON of figures
  /usr/bin/python3 evaluate.py measure --work /work/dsd-train --target ../../models/pycoder-target \\
      --draft ../../models/pycoder-draft --out results/baseline.json
  # the pair in WORKDIR, after export.py: writes models/metrics.json, heldout-prompts.json, model cards
  /usr/bin/python3 evaluate.py ship /work/dsd-train <repo>
"""
import argparse
import json
import math
import os
import re
import time

import numpy as np
import torch
import torch.nn.functional as F

import bpe
import corpus
import data
from export import checkpoint, load_hf, round_to_f16
from model import Cache, forward_cached, processed_probs
from train import load_model

K = 4
N_PROMPTS = 40
PROMPT_TOKENS = 64
NEW_TOKENS = 96
TEMPERATURE, TOP_P = 0.8, 0.95
PPL_SEQ, PPL_WINDOWS_PER_PACKAGE = 512, 8


def load_any(path):
    """(model, checkpoint state or None) from a train.py checkpoint or an exported HF directory."""
    if os.path.isdir(path):
        return load_hf(path), None
    return load_model(path)


@torch.no_grad()
def perplexity(model, held, ranges, enc):
    """(perplexity, bits per byte, tokens) over the package-balanced held-out windows."""
    nll, n, nbytes = 0.0, 0, 0
    for w in data.eval_windows(held, PPL_SEQ, ranges=ranges, per_package=PPL_WINDOWS_PER_PACKAGE):
        logits = model(w[:, :-1])
        nll += F.cross_entropy(logits.view(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum").item()
        n += w.shape[1] - 1
        nbytes += len(enc.decode(w[0, 1:].tolist()).encode())
    return math.exp(nll / n), nll / math.log(2) / nbytes, n


@torch.no_grad()
def speculative(target, draft, prompts, k=K, new_tokens=NEW_TOKENS, temperature=0.0, top_p=1.0, seed=0):
    """Speculative decoding simulated exactly. Per round the draft proposes k tokens from its processed
    distribution q (argmax when greedy), the target scores them in one pass, and token i is accepted
    with probability min(1, p(x)/q(x)) (for greedy: exactly when it is the target's argmax); at the
    first rejection a token is drawn from max(0, p - q) normalised, and after k acceptances from the
    target's next distribution. Returns (accepted / proposed, rounds, outputs: new token ids per prompt)."""
    gen = torch.Generator().manual_seed(seed)
    proposed = accepted = rounds = 0
    outputs = []
    for prompt in prompts:
        tc, dc = Cache(target.c.num_layers), Cache(draft.c.num_layers)
        ctx = list(prompt)
        t_logits = forward_cached(target, torch.tensor([ctx]), tc)[0, -1]
        forward_cached(draft, torch.tensor([ctx[:-1]]), dc)
        produced = 0
        while produced < new_tokens:
            d_tokens, qs, last = [], [], ctx[-1]
            for _ in range(k):
                q = processed_probs(forward_cached(draft, torch.tensor([[last]]), dc)[0, -1], temperature, top_p)
                last = int(torch.multinomial(q, 1, generator=gen))
                d_tokens.append(last)
                qs.append(q)
            v = forward_cached(target, torch.tensor([d_tokens]), tc)[0]
            ps = [processed_probs(x, temperature, top_p) for x in [t_logits] + [v[i] for i in range(k)]]
            n = 0
            while n < k:
                x = d_tokens[n]
                if float(torch.rand(1, generator=gen)) * float(qs[n][x]) < float(ps[n][x]):
                    n += 1
                else:
                    break
            if n < k:
                residual = (ps[n] - qs[n]).clamp_min(0)
                last = int(torch.multinomial(residual if residual.sum() > 0 else ps[n], 1, generator=gen))
            else:
                last = int(torch.multinomial(ps[k], 1, generator=gen))
            new = d_tokens[:n] + [last]
            proposed += k
            accepted += n
            rounds += 1
            # roll both caches back to the accepted prefix, then feed the correction/bonus token
            tc.truncate(len(ctx) + n)
            dc.truncate(len(ctx) + n - 1 + (1 if n == k else 0))
            if n == k:  # the draft's cache lacks d_k itself
                forward_cached(draft, torch.tensor([[d_tokens[-1]]]), dc)
            ctx.extend(new)
            produced += len(new)
            t_logits = forward_cached(target, torch.tensor([[new[-1]]]), tc)[0, -1]
            dc.truncate(len(ctx) - 1)
        outputs.append(ctx[len(prompt):len(prompt) + new_tokens])
    return accepted / proposed, rounds, outputs


def distinct_n(ids, n=4):
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(set(grams)) / max(1, len(grams))


def held_out_prompts(held_files, enc, n, length, seed=7):
    """n prompts of `length` tokens: a held-out package uniformly, then one of its files, then a position."""
    rng = np.random.default_rng(seed)
    by_pkg = {}
    for pkg, path, text in held_files:
        by_pkg.setdefault(pkg, []).append((path, text))
    pkgs = sorted(by_pkg)
    prompts, sources = [], []
    while len(prompts) < n:
        pkg = pkgs[rng.integers(len(pkgs))]
        path, text = by_pkg[pkg][rng.integers(len(by_pkg[pkg]))]
        ids = enc.encode(text)
        if len(ids) <= length + 1:
            continue
        s = int(rng.integers(0, len(ids) - length))
        prompts.append(ids[s:s + length])
        sources.append(f"{pkg}:{path}@{s}")
    return prompts, sources


def measure(work, target_path, draft_path, n_prompts=N_PROMPTS, new_tokens=NEW_TOKENS):
    tok = os.path.join(work, "tokenizer.json")
    for p in (target_path, draft_path):
        if os.path.isdir(p) and open(os.path.join(p, "tokenizer.json")).read() != open(tok).read():
            raise SystemExit(f"{p}/tokenizer.json differs from {tok}: perplexities would not be comparable")
    enc = bpe.load(tok)
    _, held = data.token_arrays(work, tok)
    ranges = data.held_package_ranges(work)
    target, tst = load_any(target_path)
    draft, dst = load_any(draft_path)
    for m in (target, draft):
        m.eval()
        round_to_f16(m)
    t0 = time.time()
    ppl_t, bpb_t, n_tok = perplexity(target, held, ranges, enc)
    ppl_d, bpb_d, _ = perplexity(draft, held, ranges, enc)
    t_ppl = time.time() - t0
    prompts, sources = held_out_prompts(corpus.load_split(work, "held"), enc, n_prompts, PROMPT_TOKENS)
    t1 = time.time()
    acc_g, rounds_g, out_g = speculative(target, draft, prompts, K, new_tokens, 0.0, 1.0)
    t_g = time.time() - t1
    t2 = time.time()
    acc_s, rounds_s, out_s = speculative(target, draft, prompts, K, new_tokens, TEMPERATURE, TOP_P, seed=1)
    t_s = time.time() - t2
    metrics = {
        "target": target_path, "draft": draft_path,
        "held_out_packages": len(ranges), "perplexity_tokens": n_tok,
        "target_held_out_perplexity": round(ppl_t, 2), "target_bits_per_byte": round(bpb_t, 4),
        "draft_held_out_perplexity": round(ppl_d, 2), "draft_bits_per_byte": round(bpb_d, 4),
        "prompts": n_prompts, "prompt_tokens": PROMPT_TOKENS, "new_tokens": new_tokens, "k": K,
        "greedy": {"acceptance": round(acc_g, 4), "tokens_per_round": round(n_prompts * new_tokens / rounds_g, 3),
                   "distinct_4grams": round(float(np.mean([distinct_n(o) for o in out_g])), 4),
                   "seconds": round(t_g, 1)},
        "sampled": {"temperature": TEMPERATURE, "top_p": TOP_P, "acceptance": round(acc_s, 4),
                    "tokens_per_round": round(n_prompts * new_tokens / rounds_s, 3),
                    "distinct_4grams": round(float(np.mean([distinct_n(o) for o in out_s])), 4),
                    "seconds": round(t_s, 1)},
        "perplexity_seconds": round(t_ppl, 1),
        "threads": torch.get_num_threads(),
    }
    for name, st in (("target_training", tst), ("draft_training", dst)):
        if st is not None:
            metrics[name] = {"steps": st["step"], "tokens": st["tokens"], "minutes": round(st["spent"] / 60, 1)}
    extras = {"prompt_sources": sources, "prompts": [enc.decode(p) for p in prompts],
              "greedy_samples": [enc.decode(o) for o in out_g[:3]], "sampled_samples": [enc.decode(o) for o in out_s[:3]]}
    return metrics, extras, target, draft


def continuation_stats(work, sub="cont"):
    """Size of a distillation set continuations.py wrote, and the generation time its log reports."""
    d = os.path.join(work, sub)
    seqs = new = 0
    for n in os.listdir(d):
        if n.startswith("chunk-") and n.endswith(".npz") and not n.endswith(".tmp.npz"):
            ids = np.load(os.path.join(d, n))["top_ids"]
            seqs += ids.shape[0]
            new += ids.shape[0] * ids.shape[1]
    seconds = 0.0
    log = os.path.join(work, "cont.log")
    mode = "sampled" if sub == "cont-sampled" else "greedy"
    if os.path.exists(log):
        seconds = sum(float(m) for m in re.findall(r"mode=%s .*seconds=([0-9.]+)" % mode, open(log).read()))
    return {"continuation_sequences": seqs, "continuation_tokens": new,
            "generation_minutes": round(seconds / 60, 1)}


def ship(work, repo):
    metrics, extras, target, draft = measure(work, os.path.join(work, "target.pt"), checkpoint(work, "draft"))
    phase1 = os.path.join(work, "draft.pt")
    if checkpoint(work, "draft") != phase1 and os.path.exists(phase1):  # the phase the draft started from
        dst = torch.load(phase1)
        metrics["draft_phase1_training"] = {"steps": dst["step"], "tokens": dst["tokens"],
                                            "minutes": round(dst["spent"] / 60, 1)}
    for sub in ("cont", "cont-sampled"):
        if checkpoint(work, "draft") != phase1 and os.path.isdir(os.path.join(work, sub)):
            metrics["draft_training"][sub] = continuation_stats(work, sub)
    print(json.dumps(metrics, indent=1))
    # the same held-out prompts, as text, for the Java pipeline tests and `dsd bench pipeline`
    with open(os.path.join(repo, "models", "heldout-prompts.json"), "w") as f:
        json.dump({"source": "held-out packages of tools/train/split.json, %d-token slices, seed 7" % PROMPT_TOKENS,
                   "prompts": extras["prompts"]}, f, indent=1)
    with open(os.path.join(repo, "models", "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    write_cards(repo, metrics, extras, target, draft)


def write_cards(repo, m, extras, target, draft):
    split = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "split.json")))
    for role, model in (("target", target), ("draft", draft)):
        c = model.c
        params = sum(p.numel() for p in model.parameters())
        tr = m.get(f"{role}_training", {})
        how = ("next-token cross-entropy on the training split" if role == "target" else
               "distillation from pycoder-target (train.py --role draft, then draft-seq or draft-dist; see tools/train/README.md)")
        lines = [
            f"# pycoder-{role}", "",
            f"A small Llama-architecture {role} model trained by dsd on CPU, shipped as dsd's embedded default "
            f"({'verifier' if role == 'target' else 'drafter for speculative decoding with pycoder-target'}).", "",
            "## Architecture",
            f"LlamaForCausalLM: {c.num_layers} layers, hidden {c.hidden_size}, MLP {c.intermediate_size} (SwiGLU), "
            f"{c.num_heads} heads / {c.num_kv_heads} KV heads (grouped-query), head_dim {c.head_dim}, RoPE theta {c.rope_theta}, "
            f"context {c.max_position_embeddings}, vocab {c.vocab_size} (byte-level BPE), tied embeddings. {params:,} parameters, stored as F16.", "",
            "## Data",
            f"{split['sources']}. Split by package ({split['split_rule']}): {split['train']['files']:,} training files "
            f"({split['train']['bytes']:,} bytes) from {len(split['train_packages'])} packages, {split['held_out']['files']:,} "
            f"held-out files ({split['held_out']['bytes']:,} bytes) from {len(split['held_out_packages'])} packages, "
            f"after exact and near-duplicate removal ({split['near_dup']}); see `tools/train/split.json`.", "",
            "## Training",
            f"{how}; AdamW (betas 0.9/0.95, weight decay 0.1), seed 1234, {tr.get('steps')} steps, "
            f"{tr.get('tokens', 0):,} tokens, {tr.get('minutes')} minutes on CPU (Debian python3-torch). "
            "Reproduce with the scripts in `tools/train/` (see its README).", "",
            "## Measured on the held-out packages (`tools/train/evaluate.py`)",
            f"- held-out perplexity: **{m[f'{role}_held_out_perplexity']}** ({m[f'{role}_bits_per_byte']} bits per byte; "
            f"F16 weights as shipped, {m['perplexity_tokens']:,} tokens in 512-token windows, up to 8 per package)",
            f"- acceptance of pycoder-draft by pycoder-target at window k=4: **{m['greedy']['acceptance']*100:.1f}%** greedy, "
            f"**{m['sampled']['acceptance']*100:.1f}%** sampled (T=0.8, top-p 0.95) ({m['prompts']} held-out prompts of "
            f"{m['prompt_tokens']} tokens, {m['new_tokens']} new tokens each)",
            f"- distinct 4-grams of the output token ids: {m['greedy']['distinct_4grams']} greedy, "
            f"{m['sampled']['distinct_4grams']} sampled", "",
            "## Golden vectors",
            "`golden.json` + `golden.safetensors`: PyTorch logits (F32 compute from the F16 weights) at every position of 3 prompts; "
            "dsd's Java runtime must reproduce them within 1e-3.", "",
            "## License",
            "Weights derived from the Python source of the packages listed in `tools/train/packages.txt` (each under the "
            "license in its Debian copyright file) and PSF-licensed standard library source; code under the project's license.",
        ]
        if role == "target":
            lines += ["", "## Samples (greedy, 96 new tokens, held-out prompts)"]
            for p, out in zip(extras["prompts"], extras["greedy_samples"]):
                lines += ["", "Prompt:", "```python", p, "```", "Continuation:", "```python", out, "```"]
        with open(os.path.join(repo, "models", f"pycoder-{role}", "README.md"), "w") as f:
            f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--work", default="/work/dsd-train")
    m.add_argument("--target", required=True)
    m.add_argument("--draft", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--prompts", type=int, default=N_PROMPTS)
    m.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    m.add_argument("--threads", type=int, default=1)
    q = sub.add_parser("ppl", help="held-out perplexity of one model (a checkpoint mid-training, say) on the same windows as measure")
    q.add_argument("--work", default="/work/dsd-train")
    q.add_argument("--model", required=True)
    q.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("ship")
    s.add_argument("work")
    s.add_argument("repo")
    s.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cmd == "measure":
        metrics, extras, _, _ = measure(args.work, args.target, args.draft, args.prompts, args.new_tokens)
        print(json.dumps(metrics, indent=1))
        with open(args.out, "w") as f:
            json.dump({**metrics, **extras}, f, indent=1)
    elif args.cmd == "ppl":
        tok = os.path.join(args.work, "tokenizer.json")
        _, held = data.token_arrays(args.work, tok)
        model, st = load_any(args.model)
        model.eval()
        round_to_f16(model)  # as shipped, like measure
        t0 = time.time()
        ppl, bpb, n = perplexity(model, held, data.held_package_ranges(args.work), bpe.load(tok))
        print(json.dumps({"model": args.model, "step": (st or {}).get("step"), "held_out_perplexity": round(ppl, 2),
                          "bits_per_byte": round(bpb, 4), "tokens": n, "seconds": round(time.time() - t0, 1)}))
    else:
        ship(args.work, args.repo)


if __name__ == "__main__":
    main()
