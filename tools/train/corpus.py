"""Corpus for the pycoder pair: the Python 3.11 standard library source (PSF license).

The split is by file, decided by a hash of the file's relative path, so it is stable across machines
and evaluation never sees a line of a training file. The held-out list is written to split.json.
"""
import hashlib
import json
import os
import sys

ROOT = "/usr/lib/python3.11"
HELD_OUT_PERCENT = 6  # >= 5% of files held out, per the issue
SKIP_DIRS = {"dist-packages", "site-packages", "__pycache__"}
SKIP_PREFIXES = ("config-3.11", "_sysconfigdata")  # machine-generated, not code people write


def list_files(root=ROOT):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(SKIP_PREFIXES))
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith(SKIP_PREFIXES):
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def is_held_out(rel):
    return int(hashlib.sha256(rel.encode()).hexdigest(), 16) % 100 < HELD_OUT_PERCENT


def read(rel, root=ROOT):
    try:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            return f.read()
    except (UnicodeDecodeError, OSError):
        return None


def split(root=ROOT):
    """Returns (train, held_out): lists of (relative path, text)."""
    train, held = [], []
    for rel in list_files(root):
        text = read(rel, root)
        if not text:
            continue
        (held if is_held_out(rel) else train).append((rel, text))
    return train, held


if __name__ == "__main__":
    train, held = split()
    out = sys.argv[1] if len(sys.argv) > 1 else "split.json"
    manifest = {
        "source": ROOT,
        "license": "PSF-2.0 (Python Software Foundation License)",
        "rule": f"held out when int(sha256(relative path), 16) % 100 < {HELD_OUT_PERCENT}",
        "train_files": len(train),
        "train_bytes": sum(len(t.encode()) for _, t in train),
        "held_out_files": len(held),
        "held_out_bytes": sum(len(t.encode()) for _, t in held),
        "held_out": [rel for rel, _ in held],
    }
    with open(out, "w") as f:
        json.dump(manifest, f, indent=1)
    print({k: v for k, v in manifest.items() if k != "held_out"})
