#!/usr/bin/env bash
# Starts a local multi-process dsd swarm: N target stages (layers split evenly), one draft node and
# one entry that serves no layers (it coordinates, drafts on the draft node and serves HTTP). Every node sits behind
# its own link emulator process, which delays all traffic sent to it by --latency ms one way (plus
# --jitter, and an optional --bandwidth cap); nodes announce the emulator's address, so they do not
# know they are delayed. This kernel has no netem qdisc, hence the user-space relays.
#
#   testnet/up.sh [--stages N] [--replicas R] [--latency MS] [--jitter MS] [--bandwidth MBIT]
#                 [--run DIR] [--model DIR] [--draft DIR] [--http-port PORT] [--weights f32|f16|q8|q4]
#                 [--start-timeout S]   (per node; a big shard's first start builds its weights cache)
#                 [--entry-draft]       (the entry loads the draft model and drafts itself; no draft node)
#   DSD_JAVA_OPTS (e.g. -Xmx256m) is passed to every node's JVM: a real shard's weights live outside the
#   Java heap, which otherwise grows during the first start's quantization and stays committed.
#   testnet/down.sh [--run DIR]
#
# Prints the entry's multiaddr and HTTP URL; each node logs to DIR/<name>.log; pids in DIR/pids.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
stages=4 replicas=1 latency=0 jitter=0 bandwidth=0 run="${TMPDIR:-/tmp}/dsd-testnet" http_port=0
model="$repo/models/pycoder-target" draft="$repo/models/pycoder-draft" weights=f32 start_timeout=60 entry_draft=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stages) stages="$2"; shift 2 ;;
    --replicas) replicas="$2"; shift 2 ;;
    --latency) latency="$2"; shift 2 ;;
    --jitter) jitter="$2"; shift 2 ;;
    --bandwidth) bandwidth="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --draft) draft="$2"; shift 2 ;;
    --http-port) http_port="$2"; shift 2 ;;
    --weights) weights="$2"; shift 2 ;;
    --start-timeout) start_timeout="$2"; shift 2 ;;
    --entry-draft) entry_draft=1; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "up.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
layers=$(sed -n 's/.*"num_hidden_layers" *: *\([0-9]*\).*/\1/p' "$model/config.json")
if [[ -z "$layers" ]] || (( stages < 1 || stages > layers )); then
  echo "up.sh: --stages must be 1..${layers:-?} for $model" >&2; exit 2
fi
if [[ -f "$run/pids" ]]; then "$here/down.sh" --run "$run" >/dev/null 2>&1 || true; fi
mkdir -p "$run"; rm -f "$run"/*.log "$run"/pids "$run"/entry
"$repo/dsd" --version >/dev/null   # builds the jar on first use
jar="$repo/cli/target/dsd.jar"
# a small young generation: with -Xmx256m the default one is ~85 MB of eden that every stage touches
# through and keeps resident (~60 MB of a 7B stage's RSS) though a stage's live heap is its KV pages
java_opts=(-XX:+UseSerialGC -Xss1m -Xmn24m)
ver=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [[ -n "$ver" && "$ver" -ge 22 ]]; then java_opts+=(--enable-native-access=ALL-UNNAMED); fi
read -r -a node_opts <<<"${DSD_JAVA_OPTS:-}"

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=$(( 20000 + RANDOM % 30000 ))
# sets $got to a free port (no subshell, so next_port advances)
free_port() {
  while in_use "$next_port"; do next_port=$((next_port + 1)); done
  got=$next_port; next_port=$((next_port + 1))
}

# start NAME ARGS...: a node on a free port behind its own relay; sets $addr to its announced multiaddr
start() {
  local name="$1"; shift
  local port relay id
  # a port found free can be taken by another process before the relay binds it (tests running
  # alongside): the relay is started until it has bound, on fresh ports each try
  local tries=0 link
  while :; do
    free_port; port=$got; free_port; relay=$got
    java "${java_opts[@]}" -cp "$jar" dev.dsd.testnet.LinkEmulator --latency "$latency" --jitter "$jitter" \
      --bandwidth "$bandwidth" "127.0.0.1:$relay=127.0.0.1:$port" >"$run/$name-link.log" 2>&1 &
    link=$!
    for _ in $(seq 1 $(( start_timeout * 10 ))); do
      if grep -q "^relay 127.0.0.1:$relay " "$run/$name-link.log" || ! kill -0 "$link" 2>/dev/null; then break; fi
      sleep 0.1
    done
    if grep -q "^relay 127.0.0.1:$relay " "$run/$name-link.log"; then break; fi
    kill "$link" 2>/dev/null || true
    tries=$((tries + 1))
    if [[ $tries -ge 5 ]]; then echo "up.sh: $name's link emulator did not start:" >&2; tail -3 "$run/$name-link.log" >&2; exit 1; fi
  done
  echo "$link $name-link" >>"$run/pids"
  id=$(java "${java_opts[@]}" -jar "$jar" keygen "$run/$name.key" | awk '{print $NF}')
  java "${java_opts[@]}" ${node_opts[@]+"${node_opts[@]}"} -Ddsd.home="$repo" -Dorg.slf4j.simpleLogger.defaultLogLevel=info -jar "$jar" node \
    --identity "$run/$name.key" --listen "/ip4/127.0.0.1/tcp/$port" --announce "/ip4/127.0.0.1/tcp/$relay" \
    --threads 1 "$@" >"$run/$name.log" 2>&1 &
  echo "$! $name" >>"$run/pids"
  for _ in $(seq 1 $(( start_timeout * 10 ))); do
    if grep -q '^listening ' "$run/$name.log"; then break; fi
    if ! kill -0 "$!" 2>/dev/null; then echo "up.sh: $name failed to start:" >&2; tail -5 "$run/$name.log" >&2; exit 1; fi
    sleep 0.1
  done
  grep -q '^listening ' "$run/$name.log" || { echo "up.sh: $name did not start in $start_timeout s" >&2; exit 1; }
  addr="/ip4/127.0.0.1/tcp/$relay/p2p/$id"
  echo "$name $addr" >>"$run/nodes"
}

rm -f "$run/nodes"
boot=()
for ((i = 0; i < stages; i++)); do
  from=$(( layers * i / stages )); to=$(( layers * (i + 1) / stages ))
  for ((r = 0; r < replicas; r++)); do
    name="stage$i"; [[ $r -gt 0 ]] && name="stage$i-r$r"
    start "$name" --model "$model" --layers "$from:$to" --weights "$weights" --cache "$run/cache" "${boot[@]}"
    [[ ${#boot[@]} -eq 0 ]] && boot=(--bootstrap "$addr")
    echo "$name layers [$from,$to) $addr"
  done
done
entry_args=()
if [[ $entry_draft -eq 1 ]]; then
  entry_args=(--draft "$draft")
else
  start draft --draft "$draft" "${boot[@]}"
  echo "draft $addr"
fi
http_args=()
if java -jar "$jar" node --help 2>/dev/null | grep -qE -- '^ +--http[ =]'; then http_args=(--http "127.0.0.1:$http_port"); fi
start entry "${boot[@]}" ${entry_args[@]+"${entry_args[@]}"} "${http_args[@]}"
echo "$addr" >"$run/entry"
echo "entry $addr"
url=$(sed -n 's/^http //p' "$run/entry.log" | head -1)
if [[ -n "$url" ]]; then echo "$url" >"$run/http"; echo "http $url"; fi
echo "run $run (latency ${latency} ms one way, jitter ${jitter} ms, bandwidth ${bandwidth:-0} Mbit/s)"
