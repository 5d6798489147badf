package dev.dsd.p2p.host;

import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pings every connection with a yamux PING every {@code interval}: the traffic keeps NAT and
 * firewall mappings open, and a ping unanswered within {@code timeout} means the connection is
 * dead, so it is closed, leaves the host's map, and the next stream to that peer redials.
 * Yamux pings, not libp2p ping streams: they cost 12 bytes each way and count against no
 * per-protocol stream limit on the remote.
 */
final class KeepAlive {
  private static final Logger log = LoggerFactory.getLogger(KeepAlive.class);

  private KeepAlive() {}

  static void start(Connection c, Duration interval, Duration timeout) {
    if (interval.isZero()) {
      return;
    }
    ScheduledFuture<?> task = c.channel().eventLoop().scheduleAtFixedRate(() -> {
      if (!c.channel().isActive()) {
        return;
      }
      c.muxer().ping().orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS).whenComplete((rtt, e) -> {
        if (e != null && c.channel().isActive()) {
          log.info("keepalive failed peer={} addr={} timeout_ms={}: closing the connection", c.remotePeer(),
              c.remoteAddr(), timeout.toMillis());
          c.channel().close();
        }
      });
    }, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
    c.channel().closeFuture().addListener(f -> task.cancel(false));
  }
}
