package dev.dsd.cli;

import dev.dsd.node.Node;
import dev.dsd.node.NodeConfig;
import dev.dsd.node.RelayOptions;
import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.relay.RelayLimits;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.pnet.SwarmKey;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "node",
    mixinStandardHelpOptions = true,
    description = {
      "Join a swarm and serve until stopped (SIGINT/SIGTERM close sessions and withdraw DHT records).",
      "Every part is optional: serve a target shard (--model, --layers), a draft model (--draft), both, or",
      "nothing (a pure entry and DHT router). Any node takes prompts from clients (dsd generate --peer)."
    },
    footer = {
      "",
      "Examples:",
      "  dsd node --model models/pycoder-target --layers 0:4 --listen /ip4/0.0.0.0/tcp/4001",
      "  dsd node --model models/pycoder-target --layers 4:8 --bootstrap /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...",
      "  dsd node --draft models/pycoder-draft --bootstrap /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...",
      "  dsd node --bootstrap /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW... --http 127.0.0.1:8080   # entry only",
      "  dsd node --relay --listen /ip4/203.0.113.2/tcp/4001                                 # public relay",
      "  dsd node --model models/pycoder-target --layers 0:4 --relay-reserve --bootstrap /ip4/203.0.113.2/tcp/4001/p2p/12D3KooW..."
    })
final class NodeCommand implements Callable<Integer> {
  @Option(names = "--model", paramLabel = "DIR", description = "Target model directory whose layers this node serves.")
  Path model;

  @Option(names = "--layers", paramLabel = "A:B", description = "Layers [A, B) of --model to serve (default: all).")
  String layers;

  @Option(names = "--draft", paramLabel = "DIR", description = "Draft model this node drafts with as an entry.")
  Path draft;

  @Option(names = "--listen", paramLabel = "MULTIADDR", description = "Listen address, repeatable (default: /ip4/0.0.0.0/tcp/0).")
  List<String> listen = new ArrayList<>();

  @Option(names = "--announce", paramLabel = "MULTIADDR", description = "Address to advertise instead (e.g. a relay in front), repeatable.")
  List<String> announce = new ArrayList<>();

  @Option(names = "--bootstrap", paramLabel = "MULTIADDR", description = "A swarm member to join through (with /p2p/ID), repeatable.")
  List<String> bootstrap = new ArrayList<>();

  @Option(names = "--identity", paramLabel = "FILE", description = "Ed25519 key file, created (0600) on first use (default: a fresh key).")
  Path identity;

  @Option(names = "--threads", defaultValue = "0", description = "ONNX Runtime threads, 0 = all cores.")
  int threads;

  @Option(names = "--max-sessions", defaultValue = "0", description = "Concurrent sessions this node's stage holds (0: default).")
  int maxSessions;

  @Option(names = "--swarm-key", paramLabel = "FILE", description = "Private swarm: only peers with this pre-shared key (libp2p pnet) connect.")
  Path swarmKey;

  @Option(names = "--allow-peers", paramLabel = "PEERID", split = ",", description = "Only these peers may connect (comma-separated).")
  List<String> allowPeers;

  @Option(names = "--spot-check", defaultValue = "0", paramLabel = "P", description = {
      "As an entry, re-run a round with one stage swapped for a replica with probability P and ban a peer",
      "whose activations disagree with the majority (default: ${DEFAULT-VALUE}, off)."})
  double spotCheck;

  @Option(names = "--fault", hidden = true, defaultValue = "NONE", description = "Testing only: CORRUPT makes this node's stage lie.")
  dev.dsd.node.stage.Fault fault;

  @Option(names = "--http", paramLabel = "HOST:PORT", description = "Serve the OpenAI-compatible API here (port 0 picks one).")
  String http;

  @picocli.CommandLine.Mixin
  WeightOptions weightOptions = new WeightOptions();

  @Option(names = "--relay", description = {
      "Offer circuit relay v2 service: peers behind NAT reserve slots here and are reached through this node",
      "(within --relay-slots, --relay-circuit-bytes and --relay-circuit-seconds)."})
  boolean relay;

  @Option(names = "--relay-reserve", description = {
      "Treat this node as unreachable (behind NAT) whatever AutoNAT finds: reserve slots on relays it meets",
      "(bootstrap and DHT peers offering relay service) and advertise /p2p-circuit addresses. Without it the",
      "node does so when AutoNAT finds it unreachable, and stops when AutoNAT finds it reachable."})
  boolean relayReserve;

  @Option(names = "--relay-slots", paramLabel = "N", description = "Reservations a relay grants, all peers together (default: ${DEFAULT-VALUE}).")
  int relaySlots = RelayLimits.DEFAULT_MAX_RESERVATIONS;

  @Option(names = "--relay-circuit-bytes", paramLabel = "BYTES", description = "Bytes one relayed connection may carry each way, 0 = no limit (default: ${DEFAULT-VALUE}).")
  long relayCircuitBytes = RelayLimits.DEFAULT_CIRCUIT_BYTES;

  @Option(names = "--relay-circuit-seconds", paramLabel = "S", description = "How long one relayed connection may last, 0 = no limit (default: ${DEFAULT-VALUE}).")
  long relayCircuitSeconds = RelayLimits.DEFAULT_CIRCUIT_DURATION.toSeconds();

  @Option(names = "--relay-reservation-seconds", paramLabel = "S", description = "How long a reservation lasts before renewal (default: ${DEFAULT-VALUE}).")
  long relayReservationSeconds = RelayLimits.DEFAULT_RESERVATION_TTL.toSeconds();

  @Option(names = "--no-hole-punch", hidden = true, description = "Testing only: keep relayed connections relayed (no DCUtR).")
  boolean noHolePunch;

  @Option(names = "--cache", paramLabel = "DIR", description = "Where fetched tokenizers are kept (default: ~/.cache/dsd).")
  Path cache;

  @Override
  public Integer call() throws Exception {
    // a node's log is its record of joins, leaves, sessions and rounds: dsd's own lines at info
    if (System.getProperty("org.slf4j.simpleLogger.log.dev.dsd") == null) {
      System.setProperty("org.slf4j.simpleLogger.log.dev.dsd", "info");
    }
    int from = 0;
    int to = -1;
    if (layers != null) {
      if (model == null) {
        throw new CliException("--layers needs --model");
      }
      String[] p = layers.split(":", -1);
      try {
        from = Integer.parseInt(p[0]);
        to = Integer.parseInt(p[1]);
      } catch (RuntimeException e) {
        throw new CliException("--layers must be A:B with A < B, got '" + layers + "'");
      }
      if (p.length != 2 || from < 0 || to <= from) {
        throw new CliException("--layers must be A:B with A < B, got '" + layers + "'");
      }
    }
    if (weightOptions.cache != null) {
      throw new CliException("a node keeps its run-format weights under --cache DIR/weights; --weights-cache is for"
          + " generate and bench");
    }
    NodeConfig c = new NodeConfig(parse(listen.isEmpty() ? List.of("/ip4/0.0.0.0/tcp/0") : listen), parse(announce),
        parse(bootstrap), identity, model, from, to, draft, threads, maxSessions,
        cache != null ? cache : Path.of(System.getProperty("user.home"), ".cache", "dsd"), loadKey(), allowed(),
        spotCheck, fault, http == null ? null : dev.dsd.node.http.HttpApiConfig.parse(http), weightOptions.format());
    RelayLimits limits;
    try {
      limits = RelayLimits.defaults().withMaxReservations(relaySlots)
          .withReservationTtl(java.time.Duration.ofSeconds(relayReservationSeconds))
          .withCircuit(java.time.Duration.ofSeconds(relayCircuitSeconds), relayCircuitBytes);
    } catch (IllegalArgumentException e) {
      throw new CliException(e.getMessage());
    }
    Node node = Node.start(c, new RelayOptions(relay, limits,
        relayReserve ? Reachability.Status.PRIVATE : Reachability.Status.UNKNOWN, !noHolePunch));
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      node.close();
      stopped.countDown();
    }, "dsd-shutdown"));
    for (Multiaddr a : node.addresses()) {
      System.out.println("listening " + a);
    }
    if (node.httpUrl() != null) {
      System.out.println("http " + node.httpUrl());
    }
    System.out.flush();
    stopped.await();
    return 0;
  }

  private SwarmKey loadKey() throws IOException {
    return swarmKey == null ? null : SwarmKey.load(swarmKey);
  }

  private Set<PeerId> allowed() {
    return allowPeers == null ? null : allowPeers.stream().map(PeerId::parse).collect(Collectors.toSet());
  }

  static List<Multiaddr> parse(List<String> addrs) {
    return addrs.stream().map(Multiaddr::parse).toList();
  }
}
