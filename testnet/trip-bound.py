#!/usr/bin/env python3
"""What rounds in flight can win at most, from a greedy acceptance trace (dsd-acceptance-trace/1).

Usage: testnet/trip-bound.py testnet/results/trace-pycoder-model-greedy.json [...]

A rejection costs a full round trip however many rounds are in flight: the corrected token is
known only when the verdict is back at the entry, and the round built on it must cross the whole
pipeline. So no schedule needs fewer round trips than there are rejections. This prints, per trace,
output tokens per rejection (the most any schedule gets per round trip) next to the tokens per
round synchronous rounds of window 8 and 16 get (accepted drafts + the target's token), from the
trace's match[] (how many of the drafter's proposals from each position agree with the target;
capped at the trace's max_window, so a capped value continues at the position it reaches).
"""
import json
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        t = json.load(open(path))
        cap = t["max_window"]
        tokens = cycles = 0
        rounds = {8: 0, 16: 0}
        for prompt in t["prompts"]:
            m = prompt.get("match")
            if m is None:
                sys.exit(f"{path}: not a greedy trace (no match[])")
            n = len(m)

            def run(p):
                length = 0
                while p < n:
                    length += m[p]
                    if m[p] < cap:
                        break
                    p += m[p]
                return length

            p = 0
            while p < n:
                p += run(p) + 1
                cycles += 1
            for k in rounds:
                p = 0
                while p < n:
                    p += min(k, m[p]) + 1
                    rounds[k] += 1
            tokens += n
        print(f"{path}: {len(t['prompts'])} prompts, {tokens} tokens; tokens per rejection {tokens / cycles:.2f}"
              f" (the most per round trip); synchronous tokens per round: k=8 {tokens / rounds[8]:.2f},"
              f" k=16 {tokens / rounds[16]:.2f}; round trips saved at best vs k=16: {rounds[16] / cycles:.2f}x")


if __name__ == "__main__":
    main()
