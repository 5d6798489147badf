package dev.dsd.node.swarm;

import dev.dsd.node.routing.Candidate;
import dev.dsd.node.routing.Route;
import dev.dsd.node.routing.Router;
import dev.dsd.node.routing.WeightsField;
import dev.dsd.node.swarm.proto.InfoRequest;
import dev.dsd.node.swarm.proto.NodeInfo;
import dev.dsd.node.swarm.proto.PeerRtt;
import dev.dsd.node.swarm.proto.ShardInfo;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.KadDht;
import dev.dsd.pipeline.model.WeightFormat;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This node's picture of the swarm: who serves which layers of which model, how fast, and how far
 * away. Refreshed from the DHT's provider records and each peer's info reply, with a fresh ping to
 * each; the entry refreshes between requests (not within one) and routes on the result.
 */
public final class SwarmView {
  private static final Logger log = LoggerFactory.getLogger(SwarmView.class);
  public static final int MAX_PEERS = 256;

  private final NettyHost host;
  private final KadDht dht;
  private final InfoService info;
  private final RttTable rtts;
  private final Map<PeerId, NodeInfo> nodes = new ConcurrentHashMap<>();
  private volatile long refreshedAt;

  public SwarmView(NettyHost host, KadDht dht, InfoService info, RttTable rtts) {
    this.host = host;
    this.dht = dht;
    this.info = info;
    this.rtts = rtts;
  }

  /** Refreshes unless the last refresh is younger than {@code maxAge}. */
  public void refreshIfOlder(Duration maxAge, Duration timeout) {
    if (System.nanoTime() - refreshedAt > maxAge.toNanos()) {
      refresh(timeout);
    }
  }

  /** Finds serving peers (DHT providers and current connections), asks each what it serves, pings it. */
  public synchronized void refresh(Duration timeout) {
    Set<PeerId> peers = new LinkedHashSet<>();
    try {
      peers.addAll(dht.findProviders(SwarmKeys.anyModel(), MAX_PEERS).get(timeout.toMillis(), TimeUnit.MILLISECONDS));
    } catch (Exception e) {
      log.debug("provider lookup failed: {}", e.toString());
    }
    for (Connection c : host.connections()) {
      peers.add(c.remotePeer());
    }
    // provider records reach the closest peers of their key asynchronously; the peers the DHT has
    // taught us of are asked too, so a fresh record's late arrival does not hide a server
    for (PeerId p : host.peerStore().peers()) {
      if (peers.size() >= MAX_PEERS) {
        break;
      }
      peers.add(p);
    }
    peers.remove(host.peerId());
    List<CompletableFuture<?>> asks = new ArrayList<>();
    Set<PeerId> answered = ConcurrentHashMap.newKeySet();
    for (PeerId p : peers) {
      asks.add(info.fetch(p, null, timeout).thenAccept(i -> {
        nodes.put(p, i);
        answered.add(p);
      }).exceptionally(e -> null));
      asks.add(rtts.measure(p).exceptionally(e -> null));
    }
    CompletableFuture.allOf(asks.toArray(new CompletableFuture[0])).orTimeout(timeout.toMillis() + 500,
        TimeUnit.MILLISECONDS).exceptionally(e -> null).join();
    // a peer that did not answer in time is dropped only once we have lost the connection too: a
    // busy peer is slow to answer, not gone
    nodes.keySet().removeIf(p -> !answered.contains(p) && !p.equals(host.peerId()) && !host.isConnected(p));
    nodes.put(host.peerId(), info.info(InfoRequest.getDefaultInstance()));
    refreshedAt = System.nanoTime();
    log.info("swarm view refreshed peers={} serving={} models={}", peers.size(),
        nodes.values().stream().filter(n -> n.getShardsCount() > 0).count(), models().size());
  }

  public Map<PeerId, NodeInfo> nodes() {
    return Map.copyOf(nodes);
  }

  /** Model ids some peer serves layers of. */
  public Set<String> models() {
    Set<String> out = new TreeSet<>();
    nodes.values().forEach(n -> n.getShardsList().forEach(s -> out.add(s.getModelId())));
    return out;
  }

  /** Layers of the model, as its servers report them; 0 if nobody serves it. */
  public int layers(String modelId) {
    return nodes.values().stream().flatMap(n -> n.getShardsList().stream()).filter(s -> s.getModelId().equals(modelId))
        .mapToInt(ShardInfo::getNumLayers).max().orElse(0);
  }

  /**
   * The model's stages with the weights format each announced. A stage announcing a format this
   * node does not know (a newer peer) cannot be chained with anything it knows, so it is left out.
   */
  public List<Candidate> candidates(String modelId) {
    List<Candidate> out = new ArrayList<>();
    nodes.forEach((peer, n) -> {
      for (ShardInfo s : n.getShardsList()) {
        if (s.getModelId().equals(modelId)) {
          WeightFormat weights;
          try {
            weights = WeightsField.parse(s.getWeights());
          } catch (IllegalArgumentException e) {
            log.debug("left out of routes peer={}: {}", peer, e.getMessage());
            continue;
          }
          out.add(new Candidate(peer, peer.equals(host.peerId()) ? List.of() : host.peerStore().addrs(peer),
              s.getFromLayer(), s.getToLayer(), s.getComputeMicros(), s.getSessions(), s.getMaxSessions(), weights));
        }
      }
    });
    return out;
  }

  /** The fastest chain of any one weights format for the model now, avoiding {@code avoid}. */
  public Route route(String modelId, Set<PeerId> avoid) {
    return route(modelId, avoid, null);
  }

  /** The fastest chain for the model now, all in {@code weights} (null: the fastest single format). */
  public Route route(String modelId, Set<PeerId> avoid, WeightFormat weights) {
    Router router = new Router(p -> p.equals(host.peerId()) ? 0.0 : rtts.get(p), this::rttBetween);
    return router.route(modelId, layers(modelId), candidates(modelId), avoid, weights);
  }

  /** The round trip between two peers as either of them reported it; NaN when neither did. */
  public double rttBetween(PeerId a, PeerId b) {
    if (a.equals(b)) {
      return 0;
    }
    for (PeerId[] pair : new PeerId[][] {{a, b}, {b, a}}) {
      NodeInfo n = nodes.get(pair[0]);
      if (n != null) {
        for (PeerRtt r : n.getRttsList()) {
          if (java.util.Arrays.equals(r.getPeerId().toByteArray(), pair[1].toBytes())) {
            return r.getMicros();
          }
        }
      }
    }
    return Double.NaN;
  }

  public RttTable rtts() {
    return rtts;
  }
}
