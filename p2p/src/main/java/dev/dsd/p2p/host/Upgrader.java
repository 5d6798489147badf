package dev.dsd.p2p.host;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.multistream.MultistreamHandler;
import dev.dsd.p2p.noise.NoiseHandshakeHandler;
import dev.dsd.p2p.pnet.ConnectionProtector;
import dev.dsd.p2p.pnet.PeerNotAllowedException;
import dev.dsd.p2p.yamux.YamuxFrameCodec;
import dev.dsd.p2p.yamux.YamuxSession;
import dev.dsd.p2p.yamux.YamuxStreamChannel;
import io.netty.channel.Channel;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The connection upgrade, in the order the bytes flow, on any Netty channel (a TCP socket, or a
 * relay's stream for a relayed connection):
 *
 * <pre>
 *   [pnet: nonces, XSalsa20] → multistream(/noise) → Noise XX → [allowPeers] → multistream(/yamux/1.0.0) → yamux
 * </pre>
 *
 * The bracketed steps run only when configured. The result is a {@link Connection} that is not yet
 * registered with a host ({@link NettyHost#register} does that). On failure the channel is closed.
 */
public final class Upgrader {
  private static final Logger log = LoggerFactory.getLogger(Upgrader.class);

  private final Identity identity;
  private final HostConfig config;
  private final ConnectionProtector protector; // null: public network
  private final BiConsumer<YamuxStreamChannel, PeerId> acceptStream;

  Upgrader(Identity identity, HostConfig config, ConnectionProtector protector,
      BiConsumer<YamuxStreamChannel, PeerId> acceptStream) {
    this.identity = identity;
    this.config = config;
    this.protector = protector;
    this.acceptStream = acceptStream;
  }

  /**
   * Upgrades {@code ch}. {@code protect}: run the private-network step (raw transports; a relayed
   * connection's bytes already travel inside a protected one).
   */
  public CompletableFuture<Connection> upgrade(Channel ch, boolean initiator, PeerId expected, Multiaddr addr,
      boolean protect, boolean relayed) {
    CompletableFuture<Connection> done = new CompletableFuture<>();
    if (protector != null && protect) {
      // Fails first, and says why, when the remote is outside the private network.
      protector.protect(ch).addListener(f -> {
        if (!f.isSuccess()) {
          fail(ch, done, f.cause());
        }
      });
    }
    MultistreamHandler security = initiator ? MultistreamHandler.initiator(List.of(NoiseHandshakeHandler.PROTOCOL_ID))
        : MultistreamHandler.responder(Set.of(NoiseHandshakeHandler.PROTOCOL_ID));
    ch.pipeline().addLast("ms-security", security);
    security.result().addListener(f1 -> {
      if (!f1.isSuccess()) {
        fail(ch, done, f1.cause());
        return;
      }
      // No early muxer negotiation: we list no muxers, so both sides use multistream for yamux.
      NoiseHandshakeHandler noise = new NoiseHandshakeHandler(identity, initiator, expected, List.of());
      ch.pipeline().addAfter("ms-security", "noise", noise);
      noise.result().addListener(f2 -> {
        if (!f2.isSuccess()) {
          fail(ch, done, f2.cause());
          return;
        }
        PeerId remote = noise.result().getNow().remotePeer();
        if (!config.allows(remote)) {
          log.info("refused peer={} addr={} direction={}: not in allowPeers ({} peers allowed)", remote, addr,
              initiator ? "out" : "in", config.allowPeers().size());
          fail(ch, done, new PeerNotAllowedException(remote, config.allowPeers().size()));
          return;
        }
        MultistreamHandler mux = initiator ? MultistreamHandler.initiator(List.of(YamuxSession.PROTOCOL_ID))
            : MultistreamHandler.responder(Set.of(YamuxSession.PROTOCOL_ID));
        ch.pipeline().addAfter("noise-transport", "ms-muxer", mux);
        mux.result().addListener(f3 -> {
          if (!f3.isSuccess()) {
            fail(ch, done, f3.cause());
            return;
          }
          YamuxSession session = new YamuxSession(initiator, child -> acceptStream.accept(child, remote));
          ch.pipeline().addAfter("ms-muxer", "yamux-codec", new YamuxFrameCodec());
          ch.pipeline().addAfter("yamux-codec", "yamux", session);
          if (!done.complete(new Connection(ch, remote, addr, initiator, session, relayed))) {
            ch.close(); // timed out meanwhile
          }
        });
      });
    });
    return done;
  }

  private static void fail(Channel ch, CompletableFuture<Connection> done, Throwable cause) {
    done.completeExceptionally(cause);
    ch.close();
  }
}
