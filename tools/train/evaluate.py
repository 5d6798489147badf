"""Measures the shipped pair on the held-out split and writes the model cards:
held-out perplexity of each model (F16-rounded weights, as shipped), greedy acceptance at window k=4
(the fraction of draft tokens the target accepts when the draft proposes 4 tokens per round and the
target verifies them greedily), and generation samples from 3 held-out prompts.

  /usr/bin/python3 evaluate.py /root/dsd-train <repo>
"""
import json
import math
import re
import os
import sys
import time

import numpy as np
import torch

import bpe
import corpus
import data
from export import checkpoint, round_to_f16
from model import Cache, forward_cached
from train import evaluate, load_model

K = 4
N_PROMPTS = 40
PROMPT_TOKENS = 64
NEW_TOKENS = 128


def greedy_acceptance(target, draft, prompts, k=K, new_tokens=NEW_TOKENS):
    """Speculative greedy decoding simulated exactly: per round the draft proposes k tokens greedily,
    the target checks them in one pass and keeps the agreeing prefix plus its own next token."""
    proposed = accepted = rounds = 0
    for p in prompts:
        tc, dc = Cache(target.c.num_layers), Cache(draft.c.num_layers)
        ctx = list(p)
        t_logits = forward_cached(target, torch.tensor([ctx]), tc)[0, -1]
        forward_cached(draft, torch.tensor([ctx[:-1]]), dc)
        produced = 0
        while produced < new_tokens:
            # draft k tokens from the current context (its cache holds all but the last token)
            d_tokens, last = [], ctx[-1]
            for _ in range(k):
                nxt = int(forward_cached(draft, torch.tensor([[last]]), dc)[0, -1].argmax())
                d_tokens.append(nxt)
                last = nxt
            # target verifies: logits for positions after ctx, after d1, ..., after dk
            v = forward_cached(target, torch.tensor([d_tokens]), tc)[0]
            choices = [int(t_logits.argmax())] + [int(v[i].argmax()) for i in range(k)]
            n = 0
            while n < k and d_tokens[n] == choices[n]:
                n += 1
            new = d_tokens[:n] + [choices[n]]
            proposed += k
            accepted += n
            rounds += 1
            # roll both caches back to the accepted prefix, then feed the correction/bonus token
            tc.truncate(len(ctx) + n)
            dc.truncate(len(ctx) + n - 1 + (1 if n == k else 0))
            if n == k:
                # draft cache lacks d_k itself: feed it so the cache covers ctx + accepted
                forward_cached(draft, torch.tensor([[d_tokens[-1]]]), dc)
            ctx.extend(new)
            produced += len(new)
            t_logits = forward_cached(target, torch.tensor([[new[-1]]]), tc)[0, -1]
            dc.truncate(len(ctx) - 1)
    return accepted / proposed, rounds


def continuation_stats(work):
    """Size of the distillation set continuations.py wrote, and the generation time its log reports."""
    d = os.path.join(work, "cont")
    seqs = new = 0
    for n in os.listdir(d):
        if n.startswith("chunk-") and n.endswith(".npz") and not n.endswith(".tmp.npz"):
            ids = np.load(os.path.join(d, n))["top_ids"]
            seqs += ids.shape[0]
            new += ids.shape[0] * ids.shape[1]
    seconds = 0.0
    log = os.path.join(work, "cont.log")
    if os.path.exists(log):
        seconds = sum(float(m) for m in re.findall(r"seconds=([0-9.]+)", open(log).read()))
    return {"continuation_sequences": seqs, "continuation_tokens": new,
            "generation_minutes": round(seconds / 60, 1)}


def held_out_prompts(held_files, enc, n, length, seed=7):
    rng = np.random.default_rng(seed)
    prompts = []
    files = [t for _, t in held_files]
    while len(prompts) < n:
        ids = enc.encode(files[rng.integers(len(files))])
        if len(ids) <= length + 1:
            continue
        s = int(rng.integers(0, len(ids) - length))
        prompts.append(ids[s:s + length])
    return prompts


def main():
    work, repo = sys.argv[1], sys.argv[2]
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    tok = os.path.join(work, "tokenizer.json")
    enc = bpe.load(tok)
    _, held_arr = data.token_arrays(work, tok)
    _, held_files = corpus.split()
    target, tst = load_model(os.path.join(work, "target.pt"))
    draft, dst = load_model(checkpoint(work, "draft"))
    seq = None
    if checkpoint(work, "draft").endswith("draft-seq.pt"):  # report both phases of the draft's training
        seq, dst = dst, torch.load(os.path.join(work, "draft.pt"))
    for m in (target, draft):
        m.eval()
        round_to_f16(m)
    t0 = time.time()
    ppl_t = evaluate(target, held_arr, 512)
    ppl_d = evaluate(draft, held_arr, 512)
    prompts = held_out_prompts(held_files, enc, N_PROMPTS, PROMPT_TOKENS)
    acc, rounds = greedy_acceptance(target, draft, prompts)
    proposed = rounds * K
    sample_prompts = held_out_prompts(held_files, enc, 3, 48, seed=11)
    samples = []
    from model import generate_cached
    for p in sample_prompts:
        out = generate_cached(target, torch.tensor([p]), 96)[0].tolist()
        samples.append((enc.decode(p), enc.decode(out[len(p):])))
    metrics = {
        "target_held_out_perplexity": round(ppl_t, 2),
        "draft_held_out_perplexity": round(ppl_d, 2),
        "greedy_acceptance_k4": round(acc, 4),
        "acceptance_prompts": N_PROMPTS,
        "acceptance_new_tokens_per_prompt": NEW_TOKENS,
        "target_training": {"steps": tst["step"], "tokens": tst["tokens"], "minutes": round(tst["spent"] / 60, 1)},
        "greedy_tokens_per_round_k4": round((acc * proposed + rounds) / rounds, 3),
        "draft_training": {"steps": dst["step"], "tokens": dst["tokens"], "minutes": round(dst["spent"] / 60, 1)},
        "eval_seconds": round(time.time() - t0, 1),
    }
    if seq is not None:
        metrics["draft_sequence_distillation"] = {
            "steps": seq["step"], "tokens": seq["tokens"], "minutes": round(seq["spent"] / 60, 1),
            **continuation_stats(work)}
    print(json.dumps(metrics, indent=1))
    # the same held-out prompts, as text, for the Java pipeline tests and `dsd bench pipeline`
    with open(os.path.join(repo, "models", "heldout-prompts.json"), "w") as f:
        json.dump({"source": "held-out files of tools/train/split.json, %d-token slices, seed 7" % PROMPT_TOKENS,
                   "prompts": [enc.decode(p) for p in prompts]}, f, indent=1)
    with open(os.path.join(repo, "models", "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    write_cards(repo, metrics, samples, target, draft)


def write_cards(repo, m, samples, target, draft):
    split = json.load(open(os.path.join(os.path.dirname(__file__), "split.json")))
    for role, model, ppl in (("target", target, m["target_held_out_perplexity"]), ("draft", draft, m["draft_held_out_perplexity"])):
        c = model.c
        params = sum(p.numel() for p in model.parameters())
        tr = m[f"{role}_training"]
        how = ("next-token cross-entropy on the training split" if role == "target" else
               "distillation from pycoder-target: KL divergence to the target's next-token distribution, on corpus windows "
               "and on the target's own greedy and sampled continuations of corpus prompts")
        lines = [
            f"# pycoder-{role}", "",
            f"A small Llama-architecture {'target' if role == 'target' else 'draft'} model trained by dsd on CPU, shipped as dsd's embedded default "
            f"({'verifier' if role == 'target' else 'drafter for speculative decoding with pycoder-target'}).", "",
            "## Architecture",
            f"LlamaForCausalLM: {c.num_layers} layers, hidden {c.hidden_size}, MLP {c.intermediate_size} (SwiGLU), "
            f"{c.num_heads} heads / {c.num_kv_heads} KV heads (grouped-query), head_dim {c.head_dim}, RoPE theta {c.rope_theta}, "
            f"context {c.max_position_embeddings}, vocab {c.vocab_size} (byte-level BPE), tied embeddings. {params:,} parameters, stored as F16.", "",
            "## Data",
            f"The Python 3.11 standard library source ({split['source']}, {split['license']}), split by file: "
            f"{split['train_files']} training files ({split['train_bytes']:,} bytes), {split['held_out_files']} held-out files "
            f"({split['held_out_bytes']:,} bytes) listed in `tools/train/split.json` (rule: {split['rule']}).", "",
            "## Training",
            f"{how}; AdamW (betas 0.9/0.95, weight decay 0.1), linear warm-up then cosine decay, batch 8 x 512 tokens, seed 1234, "
            f"{tr['steps']} steps, {tr['tokens']:,} tokens, {tr['minutes']} minutes on 2 CPU cores (Debian python3-torch).",
            *([f"Then sequence-level distillation: {sd['continuation_sequences']:,} greedy continuations of training-split "
               f"prompts by pycoder-target ({sd['continuation_tokens']:,} new tokens, generated in {sd['generation_minutes']} "
               "minutes with F16-rounded weights, as shipped) with the target's top-8 log-probabilities at every position; "
               "loss = cross-entropy to the target's greedy token + cross-entropy to its top-8 distribution, on generated "
               f"positions only; batch 32 x 256 tokens, {sd['steps']} steps, {sd['tokens']:,} tokens, {sd['minutes']} minutes. "
               "Greedy speculative decoding accepts a draft token exactly when it is the target's argmax in text the target "
               "itself wrote, so that is the text the draft learns from (its perplexity on corpus text rises; its agreement "
               "with the target is what counts)."]
              if role == "draft" and (sd := m.get("draft_sequence_distillation")) else []),
            "Reproduce with the scripts in `tools/train/` (see its README).", "",
            "## Measured on the held-out split (`tools/train/evaluate.py`)",
            f"- held-out perplexity: **{ppl}** (F16 weights as shipped, 512-token windows)",
            f"- greedy acceptance of pycoder-draft by pycoder-target at window k=4: **{m['greedy_acceptance_k4']*100:.1f}%** "
            f"({m['acceptance_prompts']} held-out prompts of 64 tokens, {m['acceptance_new_tokens_per_prompt']} new tokens each; "
            f"{m['greedy_tokens_per_round_k4']} tokens per verification round)", "",
            "## Golden vectors",
            "`golden.json` + `golden.safetensors`: PyTorch logits (F32 compute from the F16 weights) at every position of 3 prompts; "
            "dsd's Java runtime must reproduce them within 1e-3.", "",
            "## License",
            "Weights derived from PSF-licensed source code; released under the PSF License 2.0 terms of the training data, "
            "code under the project's license.",
        ]
        if role == "target":
            lines += ["", "## Samples (greedy, 96 new tokens, held-out prompts)"]
            for p, out in samples:
                lines += ["", "Prompt:", "```python", p, "```", "Continuation:", "```python", out, "```"]
        with open(os.path.join(repo, "models", f"pycoder-{role}", "README.md"), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
