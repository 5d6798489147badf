#!/usr/bin/env bash
# Runs testnet/nat.sh N times (default 5) and summarises the issue's two NAT timing goals over all runs:
#   routable: seconds from a NAT'd stage's launch to holding a relay reservation with its circuit
#             address advertised (goal: 10 s); three launches per run (stage0, stage1, stage1 restarted)
#   served:   seconds from its launch to its shard loaded and announced (no goal; after routable)
#   direct:   seconds from the stages' relayed connection's first stream to their direct connection (goal: 5 s)
# with each figure's 1-minute load average. Needs root, as nat.sh does. Writes the raw lines to $1.tsv
# when given an output prefix: nat-bench.sh 5 testnet/results/nat-timings (nat-bench.sh --summarize FILE.tsv
# prints the summary of such a file again)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runs="${1:-5}"
out="${2:-}"
raw="$(mktemp "${TMPDIR:-/tmp}/dsd-nat-bench.XXXXXX")"
trap 'rm -f "$raw"' EXIT
failed=0
if [[ "$runs" == --summarize ]]; then # nat-bench.sh --summarize FILE.tsv: the summary of earlier runs
  cp "$out" "$raw"
  runs=0
  out=""
fi
for i in $(seq 1 "$runs"); do
  echo "nat-bench: run $i of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if ! DSD_NAT_TIMINGS="$raw" "$here/nat.sh" >"$raw.log" 2>&1; then
    failed=$((failed + 1))
    echo "nat-bench: run $i FAILED:"; grep -E '^nat.sh' "$raw.log" | tail -3
  fi
  grep -E '^nat.sh: (routable|ok: stage0 <-> stage1)' "$raw.log" | cut -c1-160 | sed 's/^/  /'
  rm -f "$raw.log"
done
summary() { # kind, goal seconds
  awk -v k="$1" -v goal="$2" 'BEGIN {n = 0} $1 == k {v[n] = $3 + 0; l[n] = $4 + 0; n++}
    END {
      if (n == 0) {print "  " k ": no figures"; exit}
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) {t = v[i]; v[i] = v[j]; v[j] = t}
      med = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
      met = 0; for (i = 0; i < n; i++) if (v[i] <= goal) met++
      ls = 0; for (i = 0; i < n; i++) ls += l[i]
      g = goal == "-" ? "" : sprintf("; %d of %d within the %s s goal", met, n, goal)
      printf "  %-9s n=%d median %.2f s, min %.2f s, max %.2f s%s; load average %.1f on average\n",
        k ":", n, med, v[0], v[n - 1], g, ls / n
    }' "$raw"
}
echo "nat-bench: $runs runs, $failed failed"
summary routable 10
summary served -
summary direct 5
if [[ -n "$out" ]]; then cp "$raw" "$out.tsv"; fi
[[ $failed -eq 0 ]]
