package dev.dsd.p2p.relay;

import com.google.protobuf.ByteString;
import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.framing.ProtobufFrameDecoder;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.relay.proto.CircuitProto.HopMessage;
import dev.dsd.p2p.relay.proto.CircuitProto.Peer;
import dev.dsd.p2p.relay.proto.CircuitProto.Status;
import dev.dsd.p2p.relay.proto.CircuitProto.StopMessage;
import io.netty.channel.ChannelFutureListener;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The client side of circuit relay v2, on every host: reserves slots ({@link #reserve}), dials
 * {@code /p2p-circuit} addresses (hop CONNECT, installed as the host's circuit dialer) and accepts
 * relayed connections ({@value RelayProtocol#STOP}). In both directions the relayed stream then
 * becomes a connection: the host runs the same Noise and yamux upgrade over it as over TCP, the
 * dialing side as initiator.
 */
public final class RelayClient {
  private static final Logger log = LoggerFactory.getLogger(RelayClient.class);

  /** A granted reservation: the relay, until when, and the relay addresses to advertise us under. */
  public record Reservation(PeerId relay, long expireUnixSeconds, List<Multiaddr> relayAddrs, RelayVoucher voucher,
      long limitBytes, long limitSeconds) {}

  /** Relayed connections accepted at once (stop CONNECTs beyond are refused): they bypass the TCP connection limit. */
  public static final int MAX_INBOUND_RELAYED = 64;

  private final NettyHost host;
  private final java.util.concurrent.atomic.AtomicInteger inboundRelayed = new java.util.concurrent.atomic.AtomicInteger();

  private RelayClient(NettyHost host) {
    this.host = host;
  }

  /** Serves the stop protocol and makes {@code host} dial relay addresses. */
  public static RelayClient install(NettyHost host) {
    RelayClient c = new RelayClient(host);
    host.setStreamHandler(RelayProtocol.STOP, c::onStop);
    host.setCircuitDialer(c::dial);
    return c;
  }

  /** Asks a connected relay for a slot (hop RESERVE); renewing is asking again. */
  public CompletableFuture<Reservation> reserve(PeerId relay) {
    CompletableFuture<Reservation> result = new CompletableFuture<>();
    host.newStream(relay, List.of(RelayProtocol.HOP), s -> {
      s.channel().pipeline().addLast(new ProtobufFrameDecoder<>(HopMessage.parser(), RelayProtocol.MAX_MESSAGE,
          (ctx, m) -> {
            ((ProtobufFrameDecoder<?>) ctx.handler()).leave();
            try {
              result.complete(reservation(relay, m));
            } catch (RuntimeException e) {
              result.completeExceptionally(e);
            }
            s.channel().close(); // after the answer: closing fails whatever is still pending
          }, (ctx, e) -> {
            result.completeExceptionally(e);
            s.channel().close();
          }));
      s.channel().closeFuture().addListener(f -> result.completeExceptionally(
          new P2pException("relay " + relay + " closed the reservation stream without an answer")));
      result.whenComplete((r, e) -> s.channel().close()); // answered, failed or timed out: the stream is done
      s.channel().writeAndFlush(ProtobufFrameDecoder.encode(HopMessage.newBuilder()
          .setType(HopMessage.Type.RESERVE).build()));
    }).exceptionally(e -> {
      result.completeExceptionally(e);
      return null;
    });
    return result.orTimeout(RelayProtocol.HOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
  }

  private Reservation reservation(PeerId relay, HopMessage m) {
    return parseReservation(relay, host.peerId(), m);
  }

  /** The relay's answer to RESERVE, checked: status, voucher (signed by {@code relay}, for {@code self}), addresses. */
  static Reservation parseReservation(PeerId relay, PeerId self, HopMessage m) {
    if (m.getType() != HopMessage.Type.STATUS) {
      throw new ProtocolViolationException("relay " + relay + " answered RESERVE with " + m.getType());
    }
    if (m.getStatus() != Status.OK) {
      throw new P2pException("relay " + relay + " refused the reservation: " + m.getStatus());
    }
    if (!m.hasReservation()) {
      throw new ProtocolViolationException("relay " + relay + " accepted without a reservation");
    }
    RelayVoucher voucher = null;
    if (m.getReservation().hasVoucher()) {
      voucher = RelayVoucher.open(m.getReservation().getVoucher().toByteArray());
      if (!voucher.relay().equals(relay) || !voucher.peer().equals(self)) {
        throw new ProtocolViolationException("relay " + relay + " sent a voucher for " + voucher.relay() + " → "
            + voucher.peer());
      }
    }
    List<Multiaddr> addrs = new ArrayList<>();
    for (ByteString b : m.getReservation().getAddrsList()) {
      try {
        Multiaddr a = Multiaddr.fromBytes(b.toByteArray());
        addrs.add(a.peerId() == null ? a.withPeer(relay) : a);
      } catch (ProtocolViolationException ignored) {
        // a transport dsd does not speak (quic, ws): not ours to advertise
      }
    }
    return new Reservation(relay, m.getReservation().getExpire(), addrs, voucher,
        m.hasLimit() ? m.getLimit().getData() : 0, m.hasLimit() ? m.getLimit().getDuration() : 0);
  }

  /** hop CONNECT through the relay named in {@code addr}; the stream then carries our connection to {@code target}. */
  CompletableFuture<Connection> dial(Multiaddr addr, PeerId target) {
    Multiaddr relayAddr;
    try {
      relayAddr = addr.relayPart();
    } catch (IllegalArgumentException e) {
      return CompletableFuture.failedFuture(e);
    }
    PeerId relay = relayAddr.peerId();
    if (relay.equals(target) || relay.equals(host.peerId())) {
      return CompletableFuture.failedFuture(new P2pException("relay address " + addr + " relays through "
          + (relay.equals(target) ? "the target itself" : "us")));
    }
    Multiaddr full = addr.peerId() == null ? addr.withPeer(target) : addr;
    CompletableFuture<Connection> result = new CompletableFuture<>();
    CompletableFuture<Connection> toRelay = relayAddr.components().size() > 1 ? host.connect(relayAddr)
        : host.connection(relay);
    toRelay.thenCompose(c -> host.newStream(relay, List.of(RelayProtocol.HOP), s -> {
      s.channel().pipeline().addLast(new ProtobufFrameDecoder<>(HopMessage.parser(), RelayProtocol.MAX_MESSAGE,
          (ctx, m) -> {
            ProtobufFrameDecoder<?> decoder = (ProtobufFrameDecoder<?>) ctx.handler();
            if (m.getType() != HopMessage.Type.STATUS || m.getStatus() != Status.OK) {
              decoder.leave();
              result.completeExceptionally(new P2pException("relay " + relay + " could not connect us to " + target
                  + ": " + (m.getType() == HopMessage.Type.STATUS ? m.getStatus() : m.getType())));
              s.channel().close();
              return;
            }
            s.channel().pipeline().addFirst(new CircuitEnd());
            host.upgrader().upgrade(s.channel(), true, target, full, false, true).whenComplete((conn, e) -> {
              if (e != null) {
                result.completeExceptionally(e);
              } else {
                host.register(conn);
                result.complete(conn);
              }
            });
            decoder.leave(); // the upgrade's handlers are in place: what followed the status is theirs
          }, (ctx, e) -> {
            result.completeExceptionally(e);
            s.channel().close();
          }));
      s.channel().closeFuture().addListener(f -> result.completeExceptionally(
          new P2pException("relay " + relay + " closed the circuit to " + target)));
      result.whenComplete((conn, e) -> {
        if (e != null) {
          s.channel().close(); // refused, failed or timed out (orTimeout completes this future)
        }
      });
      s.channel().writeAndFlush(ProtobufFrameDecoder.encode(HopMessage.newBuilder().setType(HopMessage.Type.CONNECT)
          .setPeer(Peer.newBuilder().setId(ByteString.copyFrom(target.toBytes()))).build()));
    })).exceptionally(e -> {
      result.completeExceptionally(e);
      return null;
    });
    result.whenComplete((c, e) -> log.info("relay dial peer={} via={} result={}", target, relay,
        e == null ? "connected" : e.getMessage()));
    return result.orTimeout(RelayProtocol.HOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The target side: a relay tells us who is connecting; we accept, and the stream becomes the connection. */
  private void onStop(Stream s) {
    PeerId relay = s.remotePeer();
    s.channel().pipeline().addLast(new ProtobufFrameDecoder<>(StopMessage.parser(), RelayProtocol.MAX_MESSAGE,
        (ctx, m) -> {
          ProtobufFrameDecoder<?> decoder = (ProtobufFrameDecoder<?>) ctx.handler();
          PeerId src;
          try {
            if (m.getType() != StopMessage.Type.CONNECT || !m.hasPeer()) {
              throw new ProtocolViolationException("stop message " + m.getType() + (m.hasPeer() ? "" : " without a peer"));
            }
            src = PeerId.fromBytes(m.getPeer().getId().toByteArray());
          } catch (ProtocolViolationException e) {
            decoder.leave();
            log.info("relay stop from {} refused: {}", relay, e.getMessage());
            s.channel().writeAndFlush(ProtobufFrameDecoder.encode(StopMessage.newBuilder()
                .setType(StopMessage.Type.STATUS).setStatus(Status.MALFORMED_MESSAGE).build()))
                .addListener(ChannelFutureListener.CLOSE);
            return;
          }
          if (inboundRelayed.incrementAndGet() > MAX_INBOUND_RELAYED) {
            inboundRelayed.decrementAndGet();
            decoder.leave();
            log.info("relay stop from {} for {} refused: {} relayed connections open", relay, src, MAX_INBOUND_RELAYED);
            s.channel().writeAndFlush(ProtobufFrameDecoder.encode(StopMessage.newBuilder()
                .setType(StopMessage.Type.STATUS).setStatus(Status.RESOURCE_LIMIT_EXCEEDED).build()))
                .addListener(ChannelFutureListener.CLOSE);
            return;
          }
          s.channel().closeFuture().addListener(f -> inboundRelayed.decrementAndGet());
          Multiaddr addr = Multiaddr.circuit(relayAddr(relay)).withPeer(src);
          s.channel().writeAndFlush(ProtobufFrameDecoder.encode(StopMessage.newBuilder()
              .setType(StopMessage.Type.STATUS).setStatus(Status.OK).build()));
          s.channel().pipeline().addFirst(new CircuitEnd());
          // no pnet step: the bytes already travel inside our protected connection to the relay
          host.upgrader().upgrade(s.channel(), false, null, addr, false, true).whenComplete((c, e) -> {
            if (e != null) {
              log.info("relayed connection from {} via {} failed to upgrade: {}", src, relay, e.getMessage());
            } else if (!c.remotePeer().equals(src)) {
              log.info("relayed connection announced as {} authenticated as {}; closed", src, c.remotePeer());
              c.channel().close();
            } else {
              host.register(c);
            }
          });
          decoder.leave();
        }, (ctx, e) -> {
          log.info("relay stop from {} refused: {}", relay, e.getMessage());
          s.channel().writeAndFlush(ProtobufFrameDecoder.encode(StopMessage.newBuilder()
              .setType(StopMessage.Type.STATUS).setStatus(Status.MALFORMED_MESSAGE).build()))
              .addListener(ChannelFutureListener.CLOSE);
        }));
  }

  /** How we reach the relay: the address of our connection to it, with its id. */
  private Multiaddr relayAddr(PeerId relay) {
    for (Connection c : host.connections()) {
      if (c.remotePeer().equals(relay) && !c.relayed()) {
        return c.remoteAddr().withPeer(relay);
      }
    }
    return Multiaddr.parse("/p2p/" + relay.toBase58());
  }

  /**
   * A relay ends a circuit (limit reached, other side gone) by closing its streams: the FIN that
   * arrives here ends the relayed connection, as a TCP FIN would not (a connection is not half-open).
   */
  private static final class CircuitEnd extends io.netty.channel.ChannelInboundHandlerAdapter {
    @Override
    public void userEventTriggered(io.netty.channel.ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof io.netty.channel.socket.ChannelInputShutdownEvent) {
        ctx.close();
        return;
      }
      ctx.fireUserEventTriggered(evt);
    }
  }
}
