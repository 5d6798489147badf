#!/usr/bin/env bash
# Two pipeline stages, each behind its own NAT, serve a generation through a public entry; run by .ci/run.
#
#   public namespace (bridge, 203.0.113.0/24, documentation range):
#     relay  203.0.113.2:4001  dsd node --relay           (also the bootstrap peer)
#     entry  203.0.113.3:4001  dsd node                   (takes the prompt: dsd generate --peer)
#   home 1: router 203.0.113.11 (nftables masquerade) ── 10.1.0.0/24 ── stage0 10.1.0.2, layers 0:4
#   home 2: router 203.0.113.12 (nftables masquerade) ── 10.2.0.0/24 ── stage1 10.2.0.2, layers 4:8
#
# Routers behave like home routers: outbound connections are masqueraded, unsolicited inbound ones
# are dropped (nothing can connect in), and they know no route to the other home network. The
# stages reserve slots on the relay: stage0 because AutoNAT finds it unreachable (the relay and the
# entry both fail to dial it back), stage1 because it runs with --relay-reserve, which forces it.
# Checks:
#   1. relay only (stage1 first runs with hole punching off): a greedy generation through the entry and
#      both NAT'd stages equals the local target's output, and the relay's /metrics counts its bytes;
#   2. stage1 restarted with hole punching: the stages' relayed connection becomes direct (DCUtR, TCP
#      simultaneous open through both NATs) and generation still equals the local output;
#   3. dsd swarm shows direct or relayed per peer;
#   4. with the relay killed, a generation still works (over the direct connections).
# Needs root (namespaces, nftables). Every namespace and process it makes is removed on exit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
[[ "$(id -u)" == 0 ]] || { echo "nat.sh: needs root (network namespaces, nftables)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nat.sh: needs nftables (apt-get install -y nftables)" >&2; exit 1; }
tag="dn$$"
pub="$tag-pub" r1="$tag-r1" r2="$tag-r2" h1="$tag-h1" h2="$tag-h2"
run="$(mktemp -d "${TMPDIR:-/tmp}/dsd-nat.XXXXXX")"
pids=()
ok=0
stop() { # pid: SIGTERM, then SIGKILL after 5 s
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do stop "$p"; done
  for ns in "$h1" "$h2" "$r1" "$r2" "$pub"; do ip netns del "$ns" 2>/dev/null || true; done
  if [[ $ok -eq 1 && -z "${DSD_NAT_KEEP:-}" ]]; then rm -rf "$run"; else echo "nat.sh: logs kept in $run" >&2; fi
}
trap cleanup EXIT
fail() {
  echo "nat.sh: FAILED: $*" >&2
  for f in "$run"/*.log; do echo "--- $f" >&2; grep -v "^\s*at " "$f" | tail -15 >&2; done
  exit 1
}

# --- the networks
nsx() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }
for ns in "$pub" "$r1" "$r2" "$h1" "$h2"; do ip netns add "$ns"; nsx "$ns" ip link set lo up; done
nsx "$pub" ip link add br0 type bridge
nsx "$pub" ip addr add 203.0.113.2/24 dev br0
nsx "$pub" ip addr add 203.0.113.3/24 dev br0
nsx "$pub" ip link set br0 up
home() { # router namespace, host namespace, router's public address, home subnet (10.N.0)
  local r="$1" h="$2" wan="$3" lan="$4" port="p${1##*-}"
  ip link add wan netns "$r" type veth peer name "$port" netns "$pub"
  nsx "$pub" ip link set "$port" master br0 up
  nsx "$r" ip addr add "$wan/24" dev wan
  nsx "$r" ip link set wan up
  ip link add lan netns "$r" type veth peer name eth0 netns "$h"
  nsx "$r" ip addr add "$lan.1/24" dev lan
  nsx "$r" ip link set lan up
  nsx "$h" ip addr add "$lan.2/24" dev eth0
  nsx "$h" ip link set eth0 up
  nsx "$h" ip route add default via "$lan.1"
  nsx "$r" sysctl -qw net.ipv4.ip_forward=1
  nsx "$r" nft -f - <<EOF
table ip nat {
  chain post { type nat hook postrouting priority 100; oifname "wan" masquerade; }
}
table inet fw {
  chain wan_in { type filter hook input priority 0; iifname "wan" ct state new drop; }
  chain wan_fwd { type filter hook forward priority 0; iifname "wan" ct state new drop; }
}
EOF
}
home "$r1" "$h1" 203.0.113.11 10.1.0
home "$r2" "$h2" 203.0.113.12 10.2.0
# the NAT holds: the public side cannot open a connection to a home host
if nsx "$pub" timeout 2 bash -c 'exec 3<>/dev/tcp/10.1.0.2/9' 2>/dev/null; then fail "the public side reached 10.1.0.2"; fi

# --- the nodes
"$repo/dsd" --version >/dev/null   # builds the jar on first use
jar="$repo/cli/target/dsd.jar"
java_opts=(-XX:+UseSerialGC -Xss1m -Xmx512m -Dorg.slf4j.simpleLogger.defaultLogLevel=info
  -Dorg.slf4j.simpleLogger.showDateTime=true -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS
  -Dorg.slf4j.simpleLogger.log.dev.dsd.p2p.dcutr=debug)
ver=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [[ -n "$ver" && "$ver" -ge 22 ]]; then java_opts+=(--enable-native-access=ALL-UNNAMED); fi
model="$repo/models/pycoder-target"
node() { # namespace, name, node arguments...
  local ns="$1" name="$2"; shift 2
  local id
  id=$(java -jar "$jar" keygen "$run/$name.key" | awk '{print $NF}')
  # `ip netns exec` forks: the shell inside writes the pid that exec then makes the JVM's
  rm -f "$run/$name.pid"
  date +%H:%M:%S.%3N >"$run/$name.t0"   # launch time, in the logs' clock format
  nsx "$ns" bash -c 'echo $$ >"$0"; exec "$@"' "$run/$name.pid" java "${java_opts[@]}" -Ddsd.home="$repo" -jar "$jar" \
    node --identity "$run/$name.key" --threads 1 --cache "$run/cache-$name" "$@" >"$run/$name.log" 2>&1 &
  for _ in $(seq 1 50); do [[ -s "$run/$name.pid" ]] && break; sleep 0.1; done
  local pid
  pid=$(cat "$run/$name.pid")
  pids+=("$pid")
  eval "${name}_pid=$pid"
  eval "${name}_id=$id"
}
ms_of() { # HH:MM:SS.mmm -> milliseconds since midnight
  local h m s f
  IFS=':.' read -r h m s f <<<"$1"
  echo $(( (10#$h * 3600 + 10#$m * 60 + 10#$s) * 1000 + 10#$f ))
}
since_launch() { # name, log line (starting with its HH:MM:SS.mmm): seconds after that node's launch
  local d=$(( $(ms_of "${2%% *}") - $(ms_of "$(cat "$run/$1.t0")") ))
  (( d < 0 )) && d=$(( d + 86400000 ))
  awk -v d="$d" 'BEGIN {printf "%.1f", d / 1000}'
}
wait_log() { # file, pattern, seconds, what
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -qE "$2" "$1" && return 0; sleep 0.1; done
  fail "$4 (no '$2' in $(basename "$1") after $3 s)"
}
# (its HTTP API, for /metrics, starts once the swarm shows it a model: so wait for the relay service only)
node "$pub" relay --relay --listen /ip4/203.0.113.2/tcp/4001 --http 203.0.113.2:8080
wait_log "$run/relay.log" 'relay service on' 60 "the relay did not start"
boot="/ip4/203.0.113.2/tcp/4001/p2p/$relay_id"
node "$h1" stage0 --model "$model" --layers 0:4 --listen /ip4/10.1.0.2/tcp/4001 --bootstrap "$boot"
stage1_args=(--model "$model" --layers 4:8 --listen /ip4/10.2.0.2/tcp/4001 --bootstrap "$boot" --relay-reserve)
node "$h2" stage1 "${stage1_args[@]}" --no-hole-punch
node "$pub" entry --listen /ip4/203.0.113.3/tcp/4001 --bootstrap "$boot"
t0=$(date +%s)
# How soon a stage behind NAT is routable (issue goal: within 10 s of starting): it holds a relay
# reservation and advertises the circuit address (or AutoNAT finds it directly reachable). The node
# brings its network up before it loads its shard, and announces the shard only once it can serve.
timings() { # a line for $DSD_NAT_TIMINGS (nat-bench.sh): kind, name, value, 1-min load average
  [[ -n "${DSD_NAT_TIMINGS:-}" ]] && echo "$1 $2 $3 $(cut -d' ' -f1 /proc/loadavg)" >>"$DSD_NAT_TIMINGS"
  return 0
}
routable_pattern='addresses changed addrs=\[.*p2p-circuit|reachability peer=.* now=public'
routable() { # name: how soon after its launch the NAT'd stage was routable, and when it served its shard
  local log="$run/$1.log"
  wait_log "$log" "$routable_pattern" 60 "$1 never became routable (no relay reservation advertised)"
  wait_log "$log" 'Node - node up' 60 "$1 did not finish starting"
  local t_r t_l t_up
  t_r=$(since_launch "$1" "$(grep -m1 -E "$routable_pattern" "$log")")
  t_l=$(since_launch "$1" "$(grep -m1 -E '^[0-9:.]+ .*NettyHost - listening' "$log")")
  t_up=$(since_launch "$1" "$(grep -m1 -E '^[0-9:.]+ .*Node - node up' "$log")")
  local how
  how=$(grep -q 'nat seen' "$log" && echo "NAT seen by identify" || echo "AutoNAT's verdict or --relay-reserve")
  local verdict
  verdict=$(awk -v t="$t_r" 'BEGIN {print (t <= 10 ? "met" : "MISSED")}')
  echo "nat.sh: routable $1 ${t_r} s after launch (goal 10 s: $verdict): listening at ${t_l} s, relay slot" \
    "reserved and circuit address advertised at ${t_r} s ($how), shard loaded and announced at ${t_up} s;" \
    "load average $(cut -d' ' -f1 /proc/loadavg)"
  timings routable "$1" "$t_r"
  timings served "$1" "$t_up"
}
routable stage0
routable stage1
# a client on the public side reaches stage0 through the relay at its circuit address (and lists the swarm through it)
circuit0="$boot/p2p-circuit/p2p/$stage0_id"
nsx "$pub" java "${java_opts[@]}" -jar "$jar" swarm --peer "$circuit0" >"$run/probe.out" 2>"$run/probe.log" &
probe_pid=$!
pids+=("$probe_pid")
wait_log "$run/stage0.log" 'connected peer=.*/p2p-circuit.* direction=in relayed=true' 60 \
  "no client reached stage0 through the relay"
wait "$probe_pid" || fail "dsd swarm through stage0's circuit address failed: $(tail -3 "$run/probe.log")"
grep -q "$stage0_id" "$run/probe.out" || fail "dsd swarm through stage0's circuit address does not list stage0"
echo "nat.sh: ok: a client reached stage0 through the relay at its circuit address"
wait_log "$run/stage0.log" 'reachability peer=.* now=private' 60 "AutoNAT did not find stage0 unreachable"
wait_log "$run/stage1.log" 'relay reservation made' 60 "stage1 made no relay reservation"
wait_log "$run/entry.log" '^listening ' 60 "the entry did not start"
echo "nat.sh: both NAT'd stages hold relay reservations ($(( $(date +%s) - t0 )) s after start):"
grep -ho 'addrs=\[[^]]*p2p-circuit[^]]*\]' "$run/stage0.log" | head -1 | sed 's/^/  stage0 /'

# --- 1. generation through both NAT'd stages equals the local greedy output
prompt='def read_config(path):
    """Read a configuration file and return a dict."""
'
ids() { sed -n 's/.*"token_ids":\[\([0-9,]*\)\].*/\1/p'; }
local_ids=$(printf '%s' "$prompt" | java -Ddsd.home="$repo" -jar "$jar" generate --model "$model" --spec off \
  --max-tokens 32 --json - | ids)
[[ -n "$local_ids" ]] || fail "the local generation produced nothing"
entry="/ip4/203.0.113.3/tcp/4001/p2p/$entry_id"
generate() { # label; retries while the entry's view of the swarm fills
  local out
  for attempt in $(seq 1 "$2"); do
    out=$(printf '%s' "$prompt" | nsx "$pub" java -jar "$jar" generate --peer "$entry" --max-tokens 32 --json - \
      2>>"$run/generate.log" | tee -a "$run/generate.log" | ids) || true
    if [[ -n "$out" ]]; then
      [[ "$out" == "$local_ids" ]] || fail "$1: the swarm's tokens differ: $out vs local $local_ids"
      echo "nat.sh: ok: $1: 32 tokens through both NAT'd stages equal the local target (attempt $attempt)"
      return 0
    fi
    sleep 2
  done
  fail "$1: no generation through the entry"
}
metric() { nsx "$pub" curl -s http://203.0.113.2:8080/metrics | awk -v m="$1" '$1 == m {print $2}'; }
before=$(metric dsd_relayed_bytes_total)
generate "generation 1 (through the relay only)" 10
relayed=$(metric dsd_relayed_bytes_total)
[[ -n "$relayed" ]] && awk "BEGIN {exit !($relayed - ${before:-0} > 16384)}" \
  || fail "generation 1 did not go through the relay: dsd_relayed_bytes_total ${before:-?} -> ${relayed:-?}"
direct_between() { grep -qE "connected peer=$stage1_id .*relayed=false" "$run/stage0.log" \
  || grep -qE "connected peer=$stage0_id .*relayed=false" "$run/stage1.log"; }
if direct_between; then fail "the stages connected directly although stage1 does not hole-punch"; fi
echo "nat.sh: ok: the relay carried $(( ${relayed%.*} - ${before%.*} )) bytes of generation 1 (dsd_relayed_bytes_total $relayed)"

# --- 2. stage1 again, now with hole punching: the stages' connection becomes direct
stop "$stage1_pid"
mv "$run/stage1.log" "$run/stage1-relay-only.log"
node "$h2" stage1 "${stage1_args[@]}"
routable stage1
generate "generation 2 (stages upgraded to direct)" 10
# DCUtR tries up to 3 sessions of up to 3 attempts on a lasting relayed connection
for _ in $(seq 1 600); do direct_between && break; sleep 0.1; done
direct_between || fail "the stages' connection did not become direct within 60 s"
grep -hE "relayed=true" "$run/stage0.log" "$run/stage1.log" | grep -qE "$stage0_id|$stage1_id" \
  || fail "the stages never had a relayed connection (were they not behind NAT?)"
# How soon the relayed connection became direct (issue goal: within 5 s of its first stream): each
# stage logs, for its relayed connections to the other, the first stream's time and the direct one's.
upgrade0=$(grep -m1 -oE "dcutr upgraded peer=$stage1_id .*ms=[0-9]+" "$run/stage0.log" || true)
upgrade1=$(grep -m1 -oE "dcutr upgraded peer=$stage0_id .*ms=[0-9]+" "$run/stage1.log" || true)
[[ -n "$upgrade0$upgrade1" ]] || fail "neither stage logged its relayed connection's upgrade (dcutr upgraded)"
took=$(printf '%s\n%s\n' "$upgrade0" "$upgrade1" | sed -n 's/.*ms=//p' | sort -n | tail -1)
if (( took <= 5000 )); then verdict=met; else verdict=MISSED; fi
[[ -z "$upgrade0" ]] || echo "  stage0 ${upgrade0#dcutr }"
[[ -z "$upgrade1" ]] || echo "  stage1 ${upgrade1#dcutr }"
echo "nat.sh: ok: stage0 <-> stage1 direct through both NATs ${took} ms after the relayed connection's first" \
  "stream (goal 5 s: $verdict); load average $(cut -d' ' -f1 /proc/loadavg)"
timings direct stage0-stage1 "$(awk -v m="$took" 'BEGIN {printf "%.3f", m / 1000}')"
generate "generation 3 (direct)" 3

# --- 3. visibility
# a fresh public node sees both stages (behind NAT, its own dials to them go through the relay)
swarm=$(nsx "$pub" java -jar "$jar" swarm --peer "$entry" 2>>"$run/swarm.log") || fail "dsd swarm failed"
for id in "$stage0_id" "$stage1_id"; do
  grep -qE "$id +(direct|relayed) " <<<"$swarm" || fail "dsd swarm does not show how it reaches $id: $swarm"
done
echo "nat.sh: ok: dsd swarm shows the path to each stage:"
grep -E "$stage0_id|$stage1_id" <<<"$swarm" | awk '{print "  " $1, $2}'

# --- 4. the relay goes away; the direct connections carry on
stop "$relay_pid"
generate "generation 4 (relay killed)" 3
ok=1
echo "nat.sh: ok: all checks passed in $(( $(date +%s) - t0 )) s"
