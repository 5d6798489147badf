"""Byte-level BPE, trained here and written as a Hugging Face tokenizer.json.

Hand-written because the Hugging Face `tokenizers` Python package is not available from Debian and
PyPI is unreachable. The format and the algorithm follow GPT-2 / HF `tokenizers` exactly:
- pre-tokenization: the GPT-2 regex over the text (HF ByteLevel with use_regex=true, no prefix space),
- each pre-token's UTF-8 bytes mapped to printable characters with GPT-2's bytes_to_unicode,
- merges applied lowest rank first (HF's BPE model), decoder ByteLevel.
Java loads the result with DJL's HuggingFaceTokenizer; a Java test checks its ids equal ours.
"""
import collections
import heapq
import json

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PRE = regex.compile(GPT2_PATTERN)
SPECIAL = "<|endoftext|>"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()
U2B = {u: b for b, u in B2U.items()}


def pretokens(text):
    for m in PRE.finditer(text):
        yield "".join(B2U[b] for b in m.group().encode("utf-8"))


def train(texts, vocab_size, progress=None):
    """Returns (vocab: token -> id, merges: list of (a, b)). Id 0 is the special <|endoftext|>."""
    counts = collections.Counter()
    for t in texts:
        counts.update(pretokens(t))
    words = [list(w) for w in counts]
    freqs = [counts[w] for w in counts]
    base = sorted(set(B2U.values()))
    vocab = {SPECIAL: 0}
    for ch in base:
        vocab[ch] = len(vocab)
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)  # pair -> indices of words containing it
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_counts[(a, b)] += freqs[i]
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(vocab) < vocab_size and heap:
        negc, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negc or -negc <= 0:
            continue  # stale heap entry
        a, b = pair
        new = a + b
        merges.append(pair)
        vocab[new] = len(vocab)
        changed = collections.Counter()
        for i in list(where[pair]):
            w = words[i]
            f = freqs[i]
            j = 0
            out = []
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            for x, y in zip(w, w[1:]):
                changed[(x, y)] -= f
            for x, y in zip(out, out[1:]):
                changed[(x, y)] += f
                where[(x, y)].add(i)
            words[i] = out
        del where[pair]
        for p, d in changed.items():
            if d:
                pair_counts[p] += d
                heapq.heappush(heap, (-pair_counts[p], p))
        pair_counts.pop(pair, None)
        if progress and len(merges) % 500 == 0:
            progress(len(vocab), -negc)
    return vocab, merges


class Encoder:
    """Encodes text exactly as HF's ByteLevel + BPE model does with the same vocab and merges."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.cache = {}
        self.inv = {i: t for t, i in vocab.items()}

    def _bpe(self, word):
        got = self.cache.get(word)
        if got is not None:
            return got
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = parts[best[1]], parts[best[1] + 1]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        if len(self.cache) < 500_000:
            self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for w in pretokens(text):
            ids.extend(self._bpe(w))
        return ids

    def decode(self, ids):
        data = bytearray()
        for i in ids:
            t = self.inv[i]
            if t == SPECIAL:
                continue
            data.extend(U2B[c] for c in t)
        return data.decode("utf-8", errors="replace")


def to_hf_json(vocab, merges):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": 0, "content": SPECIAL, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab,
            "merges": [[a, b] for a, b in merges],
        },
    }


def load(path):
    with open(path) as f:
        j = json.load(f)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in j["model"]["merges"]]
    return Encoder(j["model"]["vocab"], merges)
