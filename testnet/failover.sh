#!/usr/bin/env bash
# Failover across real processes: a testnet with two replicas of every layer range; a 256-token
# greedy generation is run once undisturbed and once while the stage serving it is killed with
# SIGKILL mid-way. The outputs must be identical; the entry's measured stall is reported. Then the
# draft node is killed during a generation (it must finish, without speculation).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
run="${TMPDIR:-/tmp}/dsd-failover-testnet"
trap '"$here/down.sh" --run "$run" >/dev/null 2>&1 || true' EXIT
"$here/up.sh" --stages 2 --replicas 2 --latency 1 --run "$run" "$@" >/dev/null
entry=$(cat "$run/entry")
jar="$repo/cli/target/dsd.jar"
prompt='def merge_sorted(a, b):
    """Merge two sorted lists into one sorted list."""
'
ids() { sed -n 's/.*"token_ids":\[\([0-9,]*\)\].*/\1/p'; }
gen() { printf '%s' "$prompt" | java -jar "$jar" generate --peer "$entry" --max-tokens 256 --spec "$1" --json -; }
want=$(gen off | ids)
[[ -n "$want" ]] || { echo "failover: the undisturbed run produced nothing" >&2; exit 1; }

# a stage holding an open session right now: its log has more "session open" than "session closed|ended"
serving() {
  for log in "$run"/stage*.log; do
    local opened ended
    opened=$(grep -c 'session open' "$log" || true); ended=$(grep -cE 'session (closed|ended)' "$log" || true)
    if (( opened > ended )); then basename "$log" .log; return; fi
  done
}
gen off >"$run/disturbed.json" &
client=$!
victim=""
for _ in $(seq 1 200); do victim=$(serving); [[ -n "$victim" ]] && break; sleep 0.05; done
[[ -n "$victim" ]] || { echo "failover: no stage ever held the session" >&2; exit 1; }
sleep 1
pid=$(awk -v n="$victim" '$2 == n {print $1}' "$run/pids")
kill -9 "$pid"
echo "failover: killed $victim (pid $pid) with SIGKILL mid-generation"
wait "$client"
got=$(ids <"$run/disturbed.json")
if [[ "$got" != "$want" ]]; then
  echo "failover: FAILED: the output after the kill differs from the undisturbed run" >&2; exit 1
fi
stall=$(grep -o 'failover done.*stallMs=[0-9]*' "$run/entry.log" | tail -1 | sed 's/.*stallMs=//')
echo "failover: ok: 256 tokens identical to the undisturbed run; measured stall ${stall:-?} ms"

# the draft node dies during a speculative generation: it finishes without speculation
want_spec=$(gen 4 | ids)
gen 4 >"$run/nodraft.json" &
client=$!
sleep 1
kill -9 "$(awk '$2 == "draft" {print $1}' "$run/pids")"
wait "$client"
[[ "$(ids <"$run/nodraft.json")" == "$want_spec" ]] || { echo "failover: FAILED after the draft node died" >&2; exit 1; }
echo "failover: ok: the draft node was killed mid-generation and the output is unchanged"
