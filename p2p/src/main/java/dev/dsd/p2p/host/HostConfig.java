package dev.dsd.p2p.host;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.pnet.SwarmKey;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Set;

/**
 * Settings of a {@link NettyHost}; every limit names its unit.
 *
 * @param listen addresses to listen on (port 0 picks a free port)
 * @param announce addresses to advertise instead of the listen addresses (e.g. a relay in front); empty: listen
 * @param maxConnections connections open at once, both directions
 * @param dialTimeout TCP connect plus the whole upgrade
 * @param maxBackoff cap of the exponential back-off after failed dials to a peer
 * @param agentVersion what identify reports
 * @param swarmKey the private network's pre-shared key (libp2p pnet); null: the public network
 * @param allowPeers the only peers to keep connections with, checked after Noise authenticates them;
 *     null: any authenticated peer
 */
public record HostConfig(List<Multiaddr> listen, List<Multiaddr> announce, int maxConnections, Duration dialTimeout,
    Duration maxBackoff, String agentVersion, SwarmKey swarmKey, Set<PeerId> allowPeers) {
  public static final int DEFAULT_MAX_CONNECTIONS = 256;

  public HostConfig {
    listen = List.copyOf(listen);
    announce = List.copyOf(announce);
    if (allowPeers != null) {
      // An empty allowlist would refuse everyone; that is a config mistake, not a policy.
      if (allowPeers.isEmpty()) {
        throw new IllegalArgumentException("allowPeers is empty: no peer could connect (null accepts any peer)");
      }
      allowPeers = Set.copyOf(allowPeers);
    }
  }

  /** A public-network host that accepts any authenticated peer. */
  public HostConfig(List<Multiaddr> listen, List<Multiaddr> announce, int maxConnections, Duration dialTimeout,
      Duration maxBackoff, String agentVersion) {
    this(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, null, null);
  }

  public static HostConfig loopback() {
    return new HostConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(), DEFAULT_MAX_CONNECTIONS,
        Duration.ofSeconds(10), Duration.ofMinutes(1), "dsd/0.1.0");
  }

  public HostConfig withSwarmKey(SwarmKey key) {
    return new HostConfig(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, key, allowPeers);
  }

  /** Only these peers may connect or be connected to; null lifts the restriction. */
  public HostConfig withAllowPeers(Collection<PeerId> peers) {
    return new HostConfig(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, swarmKey,
        peers == null ? null : Set.copyOf(peers));
  }

  public HostConfig withDialTimeout(Duration timeout) {
    return new HostConfig(listen, announce, maxConnections, timeout, maxBackoff, agentVersion, swarmKey, allowPeers);
  }

  /** Whether a connection with {@code peer} may be kept. */
  public boolean allows(PeerId peer) {
    return allowPeers == null || allowPeers.contains(peer);
  }
}
