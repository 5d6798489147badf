#!/usr/bin/env python3
"""Turns dsd's timeline debug lines (logger dev.dsd.node.pipeline.Timeline) into one row per round.

Usage: testnet/timeline.py LOG [SESSION_PREFIX]
  e.g. DSD_JAVA_OPTS=-Dorg.slf4j.simpleLogger.log.dev.dsd.node.pipeline.Timeline=debug \
       ./dsd bench pipeline --latency 20 --modes pipe-k8 --prompts 1 --sampling greedy 2> run.log
       testnet/timeline.py run.log

Each row: ms since the session's first event at which the entry sent the round, each stage received,
started, ended and forwarded it, and the entry got and read its answer; then how many rounds of the
session were in flight (sent, not yet answered) when it was sent. Rounds overlap when that is > 1.
The last session in the log is shown unless a prefix picks another.
"""
import re
import sys
from collections import OrderedDict, defaultdict

LINE = re.compile(r"timeline session=(\S+) round=(\S+) at=([0-9.]+) where=(\S+) event=(\S+)(.*)")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    events = defaultdict(list)
    order = []
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            m = LINE.search(line)
            if not m or m.group(1) == "-":
                continue
            s = m.group(1)
            if s not in events:
                order.append(s)
            events[s].append((float(m.group(3)), m.group(2), m.group(4), m.group(5), m.group(6).strip()))
    if not order:
        sys.exit("no timeline lines (is the Timeline logger at debug?)")
    want = sys.argv[2] if len(sys.argv) > 2 else order[-1]
    session = next(s for s in order if s.startswith(want))
    ev = sorted(events[session])
    t0 = ev[0][0]
    stages = OrderedDict()
    rounds = OrderedDict()
    for at, rnd, where, name, detail in ev:
        if where != "entry":
            stages.setdefault(where, None)
        rounds.setdefault(rnd, {})[(where, name)] = (at - t0, detail)
    stage_list = sorted(stages, key=lambda w: int(w[1:].split("-")[0]))
    head = f"{'round':>6} {'sent':>8}"
    for st in stage_list:
        head += f" | {st + ' recv':>11} {'start':>8} {'end':>8} {'fwd':>8}"
    head += f" | {'answered':>9} {'awaited':>8} {'trip':>7} {'inflight':>8}  detail"
    print(f"session {session}: ms since its first event")
    print(head)
    answered = []
    for rnd, e in rounds.items():
        if ("entry", "sent") not in e:
            continue
        sent = e[("entry", "sent")][0]
        inflight = 1 + sum(1 for r2, e2 in rounds.items() if r2 != rnd and ("entry", "sent") in e2
                           and e2[("entry", "sent")][0] < sent
                           and e2.get(("entry", "answered"), (float("inf"),))[0] > sent)
        row = f"{rnd:>6} {sent:8.1f}"
        for st in stage_list:
            for name in ("recv", "start", "end", "forwarded"):
                v = e.get((st, name))
                width = 11 if name == "recv" else 8
                row += (" | " if name == "recv" else " ") + (f"{v[0]:{width}.1f}" if v else f"{'-':>{width}}")
        ans = e.get(("entry", "answered"))
        aw = e.get(("entry", "awaited"))
        row += f" | {ans[0] if ans else float('nan'):9.1f} {aw[0] if aw else float('nan'):8.1f}"
        row += f" {(ans[0] - sent) if ans else float('nan'):7.1f} {inflight:8d}  {e[('entry', 'sent')][1]}"
        dropped = [st for st in stage_list if (st, "dropped") in e]
        if dropped:
            row += " dropped at " + ",".join(dropped)
        cancel = e.get(("entry", "cancel-sent"))
        if cancel:
            row += f" | cancel after it at {cancel[0]:.1f} ({cancel[1]})"
        print(row)
        if ans:
            answered.append((sent, ans[0]))
    if answered:
        busy = sum(a - s for s, a in answered)
        span = max(a for _, a in answered) - min(s for s, _ in answered)
        print(f"rounds {len(answered)}  sum of round trips {busy:.1f} ms over {span:.1f} ms:"
              f" {busy / span:.2f} rounds in flight on average")


if __name__ == "__main__":
    main()
