"""Writes a trained checkpoint as a Hugging Face model directory: config.json, generation_config.json,
model.safetensors (F16), tokenizer.json, tokenizer_config.json; plus golden vectors (golden.json with
prompts and token ids, golden.safetensors with the F32 logits at every position computed from the
F16-rounded weights) that the Java runtime must reproduce within 1e-3."""
import json
import os
import shutil
import struct

import numpy as np
import torch

import bpe
from train import load_model

GOLDEN_PROMPTS = [
    "def fibonacci(n):\n    ",
    "import os\nimport sys\n\n\nclass ",
    "    for i in range(len(items)):\n        if items[i] is None:\n",
]


def write_safetensors(path, tensors, dtype):
    names = sorted(tensors)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    tag = {np.float16: "F16", np.float32: "F32"}[dtype]
    for n in names:
        a = np.ascontiguousarray(tensors[n].detach().float().numpy().astype(dtype))
        b = a.tobytes()
        header[n] = {"dtype": tag, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """{name: float32 torch tensor} from a safetensors file (F16, BF16 or F32)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        raw = np.frombuffer(blob[a:b], dtype={"F16": np.float16, "F32": np.float32, "BF16": np.uint16}[h["dtype"]])
        if h["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(raw.astype(np.float32).reshape(h["shape"]))
    return out


def load_hf(model_dir):
    """A Llama from an exported Hugging Face directory (config.json + model.safetensors), e.g. the shipped pair."""
    from model import Config, Llama
    with open(os.path.join(model_dir, "config.json")) as f:
        hf = json.load(f)
    c = Config(vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"], intermediate_size=hf["intermediate_size"],
               num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
               num_kv_heads=hf["num_key_value_heads"], max_position_embeddings=hf["max_position_embeddings"],
               rope_theta=hf["rope_theta"], rms_norm_eps=hf["rms_norm_eps"], tie_word_embeddings=hf["tie_word_embeddings"])
    m = Llama(c)
    sd = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in read_safetensors(
        os.path.join(model_dir, "model.safetensors")).items()}
    if c.tie_word_embeddings:
        sd["lm_head.weight"] = sd["embed_tokens.weight"]
    m.load_state_dict(sd)
    return m


def checkpoint(work, role):
    """The checkpoint a role ships from: the draft's last phase (draft-dist, else draft-seq) when it ran."""
    for last in ("draft-dist", "draft-seq"):
        if role == "draft" and os.path.exists(os.path.join(work, f"{last}.pt")):
            return os.path.join(work, f"{last}.pt")
    return os.path.join(work, f"{role}.pt")


def round_to_f16(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def export(ckpt, tokenizer, out, name):
    model, st = load_model(ckpt)
    model.eval()
    round_to_f16(model)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(model.c.to_hf(bos=0, eos=0), f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 0, "eos_token_id": 0, "do_sample": False, "max_new_tokens": 128}, f, indent=2)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bpe.SPECIAL, "eos_token": bpe.SPECIAL,
                   "model_max_length": model.c.max_position_embeddings, "add_bos_token": False}, f, indent=2)
    shutil.copyfile(tokenizer, os.path.join(out, "tokenizer.json"))
    write_safetensors(os.path.join(out, "model.safetensors"), model.hf_state_dict(), np.float16)
    enc = bpe.load(tokenizer)
    golden, tensors = [], {}
    for i, p in enumerate(GOLDEN_PROMPTS):
        ids = enc.encode(p)
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0]
        golden.append({"prompt": p, "token_ids": ids, "logits": f"logits.{i}"})
        tensors[f"logits.{i}"] = logits
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump({"model": name, "compute": "float32 from the F16 weights", "tolerance": 1e-3, "cases": golden}, f, indent=1)
    write_safetensors(os.path.join(out, "golden.safetensors"), tensors, np.float32)
    return model, st


if __name__ == "__main__":
    import sys
    work, repo = sys.argv[1], sys.argv[2]
    tok = os.path.join(work, "tokenizer.json")
    for role in ("target", "draft"):
        ck = checkpoint(work, role)
        if os.path.exists(ck):
            export(ck, tok, os.path.join(repo, "models", f"pycoder-{role}"), f"pycoder-{role}")
            print("exported", role)
