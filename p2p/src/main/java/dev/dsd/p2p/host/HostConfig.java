package dev.dsd.p2p.host;

import dev.dsd.p2p.multiaddr.Multiaddr;
import java.time.Duration;
import java.util.List;

/**
 * Settings of a {@link NettyHost}; every limit names its unit.
 *
 * @param listen addresses to listen on (port 0 picks a free port)
 * @param announce addresses to advertise instead of the listen addresses (e.g. a relay in front); empty: listen
 * @param maxConnections connections open at once, both directions
 * @param dialTimeout TCP connect plus the whole upgrade
 * @param maxBackoff cap of the exponential back-off after failed dials to a peer
 * @param agentVersion what identify reports
 */
public record HostConfig(List<Multiaddr> listen, List<Multiaddr> announce, int maxConnections, Duration dialTimeout,
    Duration maxBackoff, String agentVersion) {
  public static final int DEFAULT_MAX_CONNECTIONS = 256;

  public HostConfig {
    listen = List.copyOf(listen);
    announce = List.copyOf(announce);
  }

  public static HostConfig loopback() {
    return new HostConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(), DEFAULT_MAX_CONNECTIONS,
        Duration.ofSeconds(10), Duration.ofMinutes(1), "dsd/0.1.0");
  }
}
