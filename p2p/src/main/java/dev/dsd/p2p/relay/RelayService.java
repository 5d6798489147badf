package dev.dsd.p2p.relay;

import com.google.protobuf.ByteString;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.framing.ProtobufFrameDecoder;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.relay.proto.CircuitProto.HopMessage;
import dev.dsd.p2p.relay.proto.CircuitProto.Limit;
import dev.dsd.p2p.relay.proto.CircuitProto.Peer;
import dev.dsd.p2p.relay.proto.CircuitProto.Reservation;
import dev.dsd.p2p.relay.proto.CircuitProto.Status;
import dev.dsd.p2p.relay.proto.CircuitProto.StopMessage;
import dev.dsd.p2p.yamux.YamuxStreamChannel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The relay side of circuit relay v2: serves {@value RelayProtocol#HOP} (reservations and
 * connection requests) and opens {@value RelayProtocol#STOP} streams to reserved peers.
 *
 * <pre>
 *   A ──hop RESERVE──► R            R ──hop STATUS OK + reservation (voucher) + limit──► A
 *   B ──hop CONNECT(A)──► R ──stop CONNECT(B) + limit──► A ──stop STATUS OK──► R ──hop STATUS OK──► B
 *   then B's hop stream and A's stop stream are joined ({@link RelayCircuit}) and carry B↔A's connection
 * </pre>
 *
 * Refusals follow the spec: a request over a relayed connection is PERMISSION_DENIED (no relay
 * chains), a full table RESERVATION_REFUSED, a target without a live reservation NO_RESERVATION,
 * too many circuits RESOURCE_LIMIT_EXCEEDED, a target that does not answer CONNECTION_FAILED. A
 * reservation ends at its expiry or when the reserving peer disconnects.
 */
public final class RelayService {
  private static final Logger log = LoggerFactory.getLogger(RelayService.class);

  private final NettyHost host;
  private final RelayLimits limits;
  private final Map<PeerId, Long> reservations = new ConcurrentHashMap<>(); // peer -> expiry, unix seconds
  private final Map<PeerId, AtomicInteger> perPeer = new ConcurrentHashMap<>();
  private final AtomicInteger circuits = new AtomicInteger();
  private final LongAdder relayedBytes = new LongAdder();

  private RelayService(NettyHost host, RelayLimits limits) {
    this.host = host;
    this.limits = limits;
  }

  /** Starts serving the hop protocol on {@code host}. */
  public static RelayService start(NettyHost host, RelayLimits limits) {
    RelayService r = new RelayService(host, limits);
    host.setStreamHandler(RelayProtocol.HOP, r::onHop);
    host.onDisconnect(c -> {
      if (!host.isConnected(c.remotePeer()) && r.reservations.remove(c.remotePeer()) != null) {
        log.info("relay reservation dropped peer={} reason=disconnected", c.remotePeer());
      }
    });
    log.info("relay service on slots={} circuits={} circuitBytes={} circuitSeconds={} ttlSeconds={}",
        limits.maxReservations(), limits.maxCircuits(), limits.circuitBytes(), limits.circuitDuration().toSeconds(),
        limits.reservationTtl().toSeconds());
    return r;
  }

  /** Bytes carried through this relay, both directions, since start. */
  public long relayedBytes() {
    return relayedBytes.sum();
  }

  public int reservationCount() {
    return reservations.size();
  }

  public int circuitCount() {
    return circuits.get();
  }

  private void onHop(Stream s) {
    s.channel().pipeline().addLast(new ProtobufFrameDecoder<>(HopMessage.parser(), RelayProtocol.MAX_MESSAGE,
        (ctx, m) -> onMessage(s, ctx, m), (ctx, e) -> {
          log.info("relay hop from {} refused: {}", s.remotePeer(), e.getMessage());
          reply(s, HopMessage.newBuilder().setType(HopMessage.Type.STATUS).setStatus(Status.MALFORMED_MESSAGE));
        }));
  }

  private void onMessage(Stream s, ChannelHandlerContext ctx, HopMessage m) {
    ProtobufFrameDecoder<?> decoder = (ProtobufFrameDecoder<?>) ctx.handler();
    decoder.leave(); // one request per stream; nothing more is read until a circuit is joined
    s.channel().config().setAutoRead(false);
    if (s.channel().parent() instanceof YamuxStreamChannel) {
      refuse(s, Status.PERMISSION_DENIED, "over a relayed connection");
      return;
    }
    switch (m.getType()) {
      case RESERVE -> reserve(s);
      case CONNECT -> connect(s, m);
      default -> refuse(s, Status.UNEXPECTED_MESSAGE, "hop message of type " + m.getType());
    }
  }

  private void reserve(Stream s) {
    PeerId peer = s.remotePeer();
    long now = System.currentTimeMillis() / 1000;
    reservations.values().removeIf(exp -> exp <= now);
    if (!reservations.containsKey(peer) && reservations.size() >= limits.maxReservations()) {
      refuse(s, Status.RESERVATION_REFUSED, "all " + limits.maxReservations() + " slots taken");
      return;
    }
    long expire = now + limits.reservationTtl().toSeconds();
    reservations.put(peer, expire);
    Reservation.Builder r = Reservation.newBuilder().setExpire(expire)
        .setVoucher(ByteString.copyFrom(new RelayVoucher(host.peerId(), peer, expire).seal(host.identity())));
    for (Multiaddr a : host.advertisedAddrs()) {
      if (!a.isCircuit()) {
        r.addAddrs(ByteString.copyFrom(a.withPeer(host.peerId()).toBytes()));
      }
    }
    log.info("relay reservation granted peer={} expire={} slots={}/{}", peer, expire, reservations.size(),
        limits.maxReservations());
    reply(s, HopMessage.newBuilder().setType(HopMessage.Type.STATUS).setStatus(Status.OK).setReservation(r)
        .setLimit(limit()));
  }

  private Limit limit() {
    return Limit.newBuilder().setDuration((int) Math.min(Integer.MAX_VALUE, limits.circuitDuration().toSeconds()))
        .setData(limits.circuitBytes()).build();
  }

  private void connect(Stream s, HopMessage m) {
    PeerId src = s.remotePeer();
    PeerId dst;
    try {
      if (!m.hasPeer()) {
        throw new ProtocolViolationException("CONNECT without a peer");
      }
      dst = PeerId.fromBytes(m.getPeer().getId().toByteArray());
    } catch (ProtocolViolationException e) {
      refuse(s, Status.MALFORMED_MESSAGE, e.getMessage());
      return;
    }
    Long exp = reservations.get(dst);
    if (exp == null || exp <= System.currentTimeMillis() / 1000 || !host.isConnected(dst)) {
      refuse(s, Status.NO_RESERVATION, "no reservation for " + dst);
      return;
    }
    if (circuits.incrementAndGet() > limits.maxCircuits()) {
      circuits.decrementAndGet();
      refuse(s, Status.RESOURCE_LIMIT_EXCEEDED, limits.maxCircuits() + " circuits open");
      return;
    }
    AtomicInteger ns = perPeer.computeIfAbsent(src, p -> new AtomicInteger());
    AtomicInteger nd = perPeer.computeIfAbsent(dst, p -> new AtomicInteger());
    if (ns.incrementAndGet() > limits.maxCircuitsPerPeer() | nd.incrementAndGet() > limits.maxCircuitsPerPeer()) {
      release(src, dst);
      refuse(s, Status.RESOURCE_LIMIT_EXCEEDED, limits.maxCircuitsPerPeer() + " circuits per peer");
      return;
    }
    AtomicBoolean released = new AtomicBoolean();
    Runnable releaseOnce = () -> {
      if (released.compareAndSet(false, true)) {
        release(src, dst);
      }
    };
    AtomicBoolean answered = new AtomicBoolean();
    host.newStream(dst, List.of(RelayProtocol.STOP), stop -> {
      stop.channel().closeFuture().addListener(f -> releaseOnce.run());
      stop.channel().pipeline().addLast(new ProtobufFrameDecoder<>(StopMessage.parser(), RelayProtocol.MAX_MESSAGE,
          (ctx, reply) -> {
            ProtobufFrameDecoder<?> decoder = (ProtobufFrameDecoder<?>) ctx.handler();
            if (!answered.compareAndSet(false, true)) {
              return;
            }
            if (reply.getType() != StopMessage.Type.STATUS || reply.getStatus() != Status.OK) {
              decoder.leave();
              stop.channel().close();
              refuse(s, Status.CONNECTION_FAILED, dst + " answered " + reply.getType() + " " + reply.getStatus());
              return;
            }
            join(s, src, stop, dst, releaseOnce);
            decoder.leave(); // after the pipe is in place: bytes behind the status belong to the circuit
          }, (ctx, e) -> {
            answered.set(true);
            stop.channel().close();
            refuse(s, Status.CONNECTION_FAILED, dst + " sent a bad stop reply: " + e.getMessage());
          }));
      stop.channel().writeAndFlush(ProtobufFrameDecoder.encode(StopMessage.newBuilder()
          .setType(StopMessage.Type.CONNECT).setPeer(Peer.newBuilder().setId(ByteString.copyFrom(src.toBytes())))
          .setLimit(limit()).build()));
      stop.channel().eventLoop().schedule(() -> {
        if (answered.compareAndSet(false, true)) {
          stop.channel().close();
          refuse(s, Status.CONNECTION_FAILED, dst + " did not answer the stop request within "
              + RelayProtocol.STOP_TIMEOUT.toSeconds() + " s");
        }
      }, RelayProtocol.STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    }).exceptionally(e -> {
      releaseOnce.run();
      refuse(s, Status.CONNECTION_FAILED, "cannot open a stop stream to " + dst + ": " + e.getMessage());
      return null;
    });
  }

  private void join(Stream hop, PeerId src, Stream stop, PeerId dst, Runnable release) {
    RelayCircuit c = new RelayCircuit(src, hop.channel(), dst, stop.channel(), limits.circuitBytes(), relayedBytes,
        release);
    // The hop OK goes out before any byte of the target's, and each stream's handlers change on its own loop.
    hop.channel().writeAndFlush(ProtobufFrameDecoder.encode(HopMessage.newBuilder().setType(HopMessage.Type.STATUS)
        .setStatus(Status.OK).setLimit(limit()).build()));
    stop.channel().pipeline().addLast(c.pipe(stop.channel()));
    hop.channel().eventLoop().execute(() -> {
      hop.channel().pipeline().addLast(c.pipe(hop.channel()));
      hop.channel().config().setAutoRead(true);
    });
    c.start(limits.circuitDuration());
  }

  private void release(PeerId src, PeerId dst) {
    circuits.decrementAndGet();
    perPeer.computeIfPresent(src, (p, n) -> n.decrementAndGet() <= 0 ? null : n);
    perPeer.computeIfPresent(dst, (p, n) -> n.decrementAndGet() <= 0 ? null : n);
  }

  private void refuse(Stream s, Status status, String why) {
    log.info("relay refused peer={} status={} reason={}", s.remotePeer(), status, why);
    reply(s, HopMessage.newBuilder().setType(HopMessage.Type.STATUS).setStatus(status));
  }

  private static void reply(Stream s, HopMessage.Builder m) {
    s.channel().writeAndFlush(ProtobufFrameDecoder.encode(m.build())).addListener(ChannelFutureListener.CLOSE);
  }
}
