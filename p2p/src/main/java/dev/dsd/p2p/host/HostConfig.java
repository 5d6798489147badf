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
 * @param keepAlive how often an open connection is pinged (yamux ping) so NAT mappings stay open;
 *     a ping unanswered within {@code dialTimeout} ends the connection. Zero: no keepalive
 * @param maxPendingInbound inbound connections still in their handshake, at once; counted apart
 *     from established ones, so a flood of half-open handshakes cannot block our own dials
 * @param maxPendingPerIp inbound handshakes at once from one IP address
 */
public record HostConfig(List<Multiaddr> listen, List<Multiaddr> announce, int maxConnections, Duration dialTimeout,
    Duration maxBackoff, String agentVersion, SwarmKey swarmKey, Set<PeerId> allowPeers, Duration keepAlive,
    int maxPendingInbound, int maxPendingPerIp) {
  public static final int DEFAULT_MAX_CONNECTIONS = 256;
  /** Well under the ~30 s a home router's NAT keeps an idle TCP mapping at worst (RFC 5382 asks 2 h). */
  public static final Duration DEFAULT_KEEPALIVE = Duration.ofSeconds(15);
  public static final int DEFAULT_MAX_PENDING_INBOUND = 64;
  public static final int DEFAULT_MAX_PENDING_PER_IP = 8;

  public HostConfig {
    if (keepAlive.isNegative()) {
      throw new IllegalArgumentException("keepAlive is negative: " + keepAlive);
    }
    if (maxPendingInbound < 1 || maxPendingPerIp < 1) {
      throw new IllegalArgumentException("maxPendingInbound " + maxPendingInbound + " and maxPendingPerIp "
          + maxPendingPerIp + " must be at least 1");
    }
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
    this(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, null, null, DEFAULT_KEEPALIVE,
        DEFAULT_MAX_PENDING_INBOUND, DEFAULT_MAX_PENDING_PER_IP);
  }

  public static HostConfig loopback() {
    return new HostConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(), DEFAULT_MAX_CONNECTIONS,
        Duration.ofSeconds(10), Duration.ofMinutes(1), "dsd/0.1.0");
  }

  public HostConfig withSwarmKey(SwarmKey key) {
    return new HostConfig(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, key, allowPeers,
        keepAlive, maxPendingInbound, maxPendingPerIp);
  }

  /** Only these peers may connect or be connected to; null lifts the restriction. */
  public HostConfig withAllowPeers(Collection<PeerId> peers) {
    return new HostConfig(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, swarmKey,
        peers == null ? null : Set.copyOf(peers), keepAlive, maxPendingInbound, maxPendingPerIp);
  }

  public HostConfig withDialTimeout(Duration timeout) {
    return new HostConfig(listen, announce, maxConnections, timeout, maxBackoff, agentVersion, swarmKey, allowPeers,
        keepAlive, maxPendingInbound, maxPendingPerIp);
  }

  public HostConfig withKeepAlive(Duration interval) {
    return new HostConfig(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, swarmKey, allowPeers,
        interval, maxPendingInbound, maxPendingPerIp);
  }

  public HostConfig withPendingLimits(int inbound, int perIp) {
    return new HostConfig(listen, announce, maxConnections, dialTimeout, maxBackoff, agentVersion, swarmKey, allowPeers,
        keepAlive, inbound, perIp);
  }

  public HostConfig withMaxConnections(int max) {
    return new HostConfig(listen, announce, max, dialTimeout, maxBackoff, agentVersion, swarmKey, allowPeers,
        keepAlive, maxPendingInbound, maxPendingPerIp);
  }

  /** Whether a connection with {@code peer} may be kept. */
  public boolean allows(PeerId peer) {
    return allowPeers == null || allowPeers.contains(peer);
  }
}
