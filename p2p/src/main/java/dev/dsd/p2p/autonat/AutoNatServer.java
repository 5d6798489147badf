package dev.dsd.p2p.autonat;

import dev.dsd.p2p.autonat.AutoNatProtocol.DialRequest;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message.ResponseStatus;
import dev.dsd.p2p.framing.FramedReply;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.channel.socket.SocketChannel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The AutoNAT responder: dials a requester back on fresh connections and says whether that worked.
 * Rules (spec, Security Considerations): only addresses on the IP the requester's connection comes
 * from are dialed, so no one can aim this node at a third party; requests over relayed connections
 * are refused (the IP seen is the relay's); the requester may only ask about itself; at most
 * {@link #MAX_DIALS} addresses per request, within {@link #DIAL_BACK_TIMEOUT}; and
 * {@link AutoNatRateLimit} bounds dial-backs per peer and overall.
 */
final class AutoNatServer {
  private static final Logger log = LoggerFactory.getLogger(AutoNatServer.class);
  static final int MAX_DIALS = 4;
  /** How long a stream may take to deliver its request before it is closed. */
  static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(10);
  static final Duration DIAL_BACK_TIMEOUT = Duration.ofSeconds(15);
  static final int PER_PEER_PER_MINUTE = 3;
  static final int GLOBAL_PER_MINUTE = 30;
  static final int MAX_IN_FLIGHT = 8;

  private final NettyHost host;
  private final AutoNatRateLimit limit = new AutoNatRateLimit(PER_PEER_PER_MINUTE, GLOBAL_PER_MINUTE, MAX_IN_FLIGHT,
      60_000);

  AutoNatServer(NettyHost host) {
    this.host = host;
  }

  void serve(Stream s) {
    CompletableFuture<DialRequest> request = FramedReply.readKeepOpen(s.channel(), AutoNatProtocol.MAX_MESSAGE,
        AutoNatProtocol::parseDial, "autonat stream closed before a request");
    s.channel().eventLoop().schedule(() -> {
      if (!request.isDone()) {
        log.info("autonat request from {} did not arrive within {} s; closing", s.remotePeer(),
            REQUEST_TIMEOUT.toSeconds());
        s.channel().close();
      }
    }, REQUEST_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    request.whenComplete((req, e) -> {
          if (e != null) {
            log.info("autonat request from {} refused: {}", s.remotePeer(), e.getMessage());
            reply(s, AutoNatProtocol.response(ResponseStatus.E_BAD_REQUEST, e.getMessage(), null));
          } else {
            answer(s, req).whenComplete((m, err) -> reply(s, m != null ? m
                : AutoNatProtocol.response(ResponseStatus.E_INTERNAL_ERROR, String.valueOf(err), null)));
          }
        });
  }

  private static void reply(Stream s, Message m) {
    if (s.channel().isActive()) {
      s.channel().writeAndFlush(AutoNatProtocol.frame(m)).addListener(f -> s.closeWrite());
      // an asker that never half-closes its side does not keep the stream
      s.channel().eventLoop().schedule(() -> {
        s.channel().close();
      }, REQUEST_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  private CompletableFuture<Message> answer(Stream s, DialRequest req) {
    if (!req.peer().equals(s.remotePeer())) {
      return done(ResponseStatus.E_BAD_REQUEST, "peer id in the request is not the peer asking");
    }
    // A relayed connection rides on a stream of the relay, not on a socket: whose IP would we check?
    if (!(s.channel().parent() instanceof SocketChannel) || !(s.channel().remoteAddress() instanceof InetSocketAddress isa)) {
      return done(ResponseStatus.E_DIAL_REFUSED, "requests over relayed connections are refused");
    }
    InetAddress observed = isa.getAddress();
    List<Multiaddr> targets = new ArrayList<>();
    for (Multiaddr a : req.addrs()) {
      if (targets.size() < MAX_DIALS && sameIp(a, observed)) {
        targets.add(a);
      }
    }
    if (targets.isEmpty()) {
      return done(ResponseStatus.E_DIAL_REFUSED, "no address on " + observed.getHostAddress() + ", the IP the"
          + " request came from");
    }
    String refused = limit.tryAcquire(s.remotePeer(), System.currentTimeMillis());
    if (refused != null) {
      log.info("autonat dial-back for {} refused: {}", s.remotePeer(), refused);
      return done(ResponseStatus.E_DIAL_REFUSED, "rate limited: " + refused);
    }
    CompletableFuture<Message> result = new CompletableFuture<>();
    List<String> errors = new ArrayList<>();
    int[] left = {targets.size()};
    for (Multiaddr a : targets) {
      host.probe(a, s.remotePeer()).whenComplete((dialed, e) -> {
        synchronized (errors) {
          left[0]--;
          if (e == null) {
            result.complete(AutoNatProtocol.response(ResponseStatus.OK, null, a));
          } else {
            errors.add(a + ": " + (e.getCause() != null ? e.getCause().getMessage() : e.getMessage()));
            if (left[0] == 0) {
              result.complete(AutoNatProtocol.response(ResponseStatus.E_DIAL_ERROR, String.join("; ", errors), null));
            }
          }
        }
      });
    }
    return result.completeOnTimeout(AutoNatProtocol.response(ResponseStatus.E_DIAL_ERROR, "dial-back timed out after "
        + DIAL_BACK_TIMEOUT.toSeconds() + " s", null), DIAL_BACK_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
        .whenComplete((m, e) -> {
          limit.release();
          log.info("autonat dial-back peer={} addrs={} status={}", s.remotePeer(), targets,
              m == null ? e : m.getDialResponse().getStatus());
        });
  }

  private static CompletableFuture<Message> done(ResponseStatus status, String text) {
    return CompletableFuture.completedFuture(AutoNatProtocol.response(status, text, null));
  }

  private static boolean sameIp(Multiaddr a, InetAddress ip) {
    for (Multiaddr.Component c : a.components()) {
      switch (c.protocol()) {
        case IP4, IP6 -> {
          try {
            return InetAddress.getByAddress(c.value()).equals(ip) && hasTcp(a);
          } catch (UnknownHostException e) {
            return false;
          }
        }
        default -> {
          return false; // DNS names or others first: not dialed (we would not know where they point)
        }
      }
    }
    return false;
  }

  private static boolean hasTcp(Multiaddr a) {
    return a.components().stream().anyMatch(c -> c.protocol() == Multiaddr.Protocol.TCP);
  }
}
