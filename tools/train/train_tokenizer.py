"""Trains the pycoder byte-level BPE and checks the held-out round trip.

It is the script that made the tokenizer the shipped pair uses (models/pycoder-target/tokenizer.json), trained on
the stdlib split by file that the first pair was trained on (corpus.stdlib_split_v1). The larger
corpus keeps that tokenizer, so perplexities of old and new models are per the same tokens; run_all.sh
copies the shipped file instead of retraining it."""
import json
import sys
import time

import bpe
import corpus

VOCAB_SIZE = 4096

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "tokenizer.json"
    train, held = corpus.stdlib_split_v1()
    t0 = time.time()
    vocab, merges = bpe.train([t for _, t in train], VOCAB_SIZE,
                              progress=lambda n, c: print(f"bpe vocab={n} last_pair_count={c} t={time.time()-t0:.0f}s", flush=True))
    with open(out, "w") as f:
        json.dump(bpe.to_hf_json(vocab, merges), f, ensure_ascii=False)
    enc = bpe.Encoder(vocab, merges)
    for rel, text in held:
        assert enc.decode(enc.encode(text)) == text, rel
    n_train = sum(len(enc.encode(t)) for _, t in train)
    n_held = sum(len(enc.encode(t)) for _, t in held)
    print(f"tokenizer vocab={len(vocab)} merges={len(merges)} train_tokens={n_train} held_out_tokens={n_held} "
          f"bytes_per_token={sum(len(t.encode()) for _, t in train)/n_train:.2f} time={time.time()-t0:.0f}s")
