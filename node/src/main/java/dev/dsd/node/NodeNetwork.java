package dev.dsd.node;

import dev.dsd.node.metrics.NodeMetrics;
import dev.dsd.p2p.autonat.AutoNatService;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.dcutr.Dcutr;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.kad.KadDht;
import dev.dsd.p2p.relay.AutoRelay;
import dev.dsd.p2p.relay.RelayClient;
import dev.dsd.p2p.relay.RelayService;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The libp2p side of a node: host, DHT, AutoNAT, relay client and service, reservations and DCUtR.
 * {@link Node#start} brings it up before it loads any model, so that a node behind NAT holds a relay
 * reservation (is routable) within seconds of starting instead of after its shard has loaded. Until
 * the node {@link #provide}s keys it is a DHT participant and a relay client that announces nothing,
 * so no peer routes a session to a stage that cannot serve yet.
 */
final class NodeNetwork implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NodeNetwork.class);

  final NettyHost host;
  final KadDht dht;
  final AutoRelay autoRelay;
  private final RelayService relayService;
  private final Dcutr dcutr;
  private final List<byte[]> announced = new CopyOnWriteArrayList<>();
  private final CompletableFuture<Void> bootstrap;

  /** Listens, installs the NAT protocols and starts joining through the bootstrap peers (without waiting). */
  static NodeNetwork start(NodeConfig c, RelayOptions relay, NodeMetrics metrics) {
    Identity id = c.identity() == null ? Identity.generate() : Identity.loadOrCreate(c.identity());
    HostConfig base = HostConfig.loopback();
    HostConfig hc = new HostConfig(c.listen(), c.announce(), base.maxConnections(), base.dialTimeout(),
        base.maxBackoff(), "dsd/0.1.0").withSwarmKey(c.swarmKey()).withAllowPeers(c.allowPeers());
    NettyHost host = new NettyHost(id, hc).start();
    try {
      return new NodeNetwork(host, c, relay, metrics);
    } catch (RuntimeException e) {
      host.close();
      throw e;
    }
  }

  private NodeNetwork(NettyHost host, NodeConfig c, RelayOptions o, NodeMetrics metrics) {
    this.host = host;
    this.dht = new KadDht(host, true, Map.of());
    host.onConnect(x -> log.info("peer joined peer={} addr={} outbound={}", x.remotePeer(), x.remoteAddr(), x.outbound()));
    host.onDisconnect(x -> log.info("peer left peer={} addr={}", x.remotePeer(), x.remoteAddr()));
    // Learns whether peers can dial us (and serves the same question for them); a node found
    // unreachable runs the DHT as a client. Its state lives in the host and ends with it.
    new AutoNatService(host, true, AutoNatService.DEFAULT_MIN_AGREEING);
    // Relay client and DCUtR always (any node may dial /p2p-circuit addresses or be upgraded to a
    // direct connection); relay service on request; reservations while the node is unreachable.
    // Installed before bootstrap, so the bootstrap peers' identify already finds relays.
    RelayClient client = RelayClient.install(host);
    this.dcutr = o.holePunch() ? Dcutr.install(host) : null;
    this.relayService = o.service() ? RelayService.start(host, o.limits()) : null;
    if (relayService != null) {
      metrics.relay(relayService::relayedBytes, relayService::circuitCount, relayService::reservationCount);
    }
    metrics.peers(() -> (int) host.connections().stream().filter(x -> !x.relayed()).count(),
        () -> (int) host.connections().stream().filter(x -> x.relayed()).count());
    this.autoRelay = new AutoRelay(host, client);
    autoRelay.onAddressesChanged(() -> {
      // peers (the DHT's servers above all) hand out what identify told them: tell them again, then re-announce
      log.info("addresses changed addrs={}", host.advertisedAddrs());
      pushIdentify();
      announce();
    });
    if (o.reachability() != Reachability.Status.UNKNOWN) {
      log.info("reachability forced={} (AutoNAT's verdict is logged, not followed)", o.reachability());
      autoRelay.setReachability(o.reachability());
    } else {
      // AutoNAT decides: PRIVATE reserves relay slots and dials from the listen port, PUBLIC drops them
      autoRelay.followReachability();
    }
    host.onReachability(r -> log.info("reachability peer={} now={} advertised={}", host.peerId(), r,
        host.advertisedAddrs()));
    this.bootstrap = c.bootstrap().isEmpty() ? CompletableFuture.completedFuture(null) : dht.bootstrap(c.bootstrap());
    log.info("network up peer={} listen={} bootstrap={}", host.peerId(), host.listenAddrs(), c.bootstrap().size());
  }

  /** Completes when the bootstrap peers were dialed and our own id looked up. */
  CompletableFuture<Void> bootstrap() {
    return bootstrap;
  }

  /** Adds keys to what this node provides, and announces all of them now. */
  void provide(List<byte[]> keys) {
    announced.addAll(keys);
    announce();
  }

  /** (Re-)announces the provided keys; nothing before {@link #provide}. */
  void announce() {
    for (byte[] key : announced) {
      dht.provide(key).whenComplete((n, e) -> log.debug("announced key peers={} error={}", n, e));
    }
  }

  /** Tells every connected peer our current addresses and protocols (identify/push). */
  void pushIdentify() {
    host.connections().forEach(x -> host.pushIdentify(x.remotePeer()).exceptionally(e -> null));
  }

  /** Withdraws the provider records; the host stays up. */
  void withdraw() {
    announced.forEach(dht::stopProviding);
  }

  @Override
  public void close() {
    autoRelay.close();
    if (dcutr != null) {
      dcutr.close();
    }
    dht.close();
    host.close();
  }
}
