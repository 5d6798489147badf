package dev.dsd.p2p.relay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.dcutr.DcutrFuzzSupport;
import dev.dsd.p2p.dcutr.proto.DcutrProto.HolePunch;
import dev.dsd.p2p.framing.ProtobufFrameDecoder;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.relay.proto.CircuitProto.HopMessage;
import dev.dsd.p2p.relay.proto.CircuitProto.Limit;
import dev.dsd.p2p.relay.proto.CircuitProto.Peer;
import dev.dsd.p2p.relay.proto.CircuitProto.Reservation;
import dev.dsd.p2p.relay.proto.CircuitProto.Status;
import dev.dsd.p2p.relay.proto.CircuitProto.StopMessage;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Mutated hop, stop and DCUtR messages (10,000 cases each, seeded): framing and interpretation
 * either accept a message or fail with a {@link P2pException} (a clear, typed error), never with
 * anything else; every input buffer is released (no leak). Then a few hundred of the same cases go
 * over real streams to a live relay, stop handler and DCUtR responder, which must keep serving and
 * leave no stream or circuit behind.
 */
class CircuitFuzzTest {
  static final int CASES = 10_000;
  static final Identity RELAY = Identity.generate();
  static final PeerId SELF = Identity.generate().peerId();

  static List<byte[]> hopSeeds() {
    long exp = System.currentTimeMillis() / 1000 + 3600;
    byte[] voucher = new RelayVoucher(RELAY.peerId(), SELF, exp).seal(RELAY);
    return List.of(
        HopMessage.newBuilder().setType(HopMessage.Type.RESERVE).build().toByteArray(),
        HopMessage.newBuilder().setType(HopMessage.Type.CONNECT)
            .setPeer(Peer.newBuilder().setId(ByteString.copyFrom(SELF.toBytes()))).build().toByteArray(),
        HopMessage.newBuilder().setType(HopMessage.Type.STATUS).setStatus(Status.OK)
            .setReservation(Reservation.newBuilder().setExpire(exp).setVoucher(ByteString.copyFrom(voucher))
                .addAddrs(ByteString.copyFrom(Multiaddr.parse("/ip4/203.0.113.2/tcp/4001").withPeer(RELAY.peerId()).toBytes())))
            .setLimit(Limit.newBuilder().setDuration(120).setData(1 << 17)).build().toByteArray());
  }

  static List<byte[]> stopSeeds() {
    return List.of(
        StopMessage.newBuilder().setType(StopMessage.Type.CONNECT)
            .setPeer(Peer.newBuilder().setId(ByteString.copyFrom(SELF.toBytes()))
                .addAddrs(ByteString.copyFrom(Multiaddr.parse("/ip4/10.0.0.1/tcp/1").toBytes())))
            .setLimit(Limit.newBuilder().setDuration(60)).build().toByteArray(),
        StopMessage.newBuilder().setType(StopMessage.Type.STATUS).setStatus(Status.OK).build().toByteArray());
  }

  static List<byte[]> dcutrSeeds() {
    return List.of(
        HolePunch.newBuilder().setType(HolePunch.Type.CONNECT)
            .addObsAddrs(ByteString.copyFrom(Multiaddr.parse("/ip4/203.0.113.11/tcp/4001").toBytes()))
            .addObsAddrs(ByteString.copyFrom(Multiaddr.parse("/ip6/2001:db8::1/tcp/4001").toBytes())).build().toByteArray(),
        HolePunch.newBuilder().setType(HolePunch.Type.SYNC).build().toByteArray());
  }

  /** A framed input: valid frames, mutated frames, lying lengths, truncations, garbage. */
  static byte[] mutate(List<byte[]> seeds, SplittableRandom r) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    int frames = 1 + r.nextInt(3);
    for (int f = 0; f < frames; f++) {
      byte[] m = seeds.get(r.nextInt(seeds.size())).clone();
      switch (r.nextInt(6)) {
        case 0 -> { } // as is
        case 1 -> { // flip bytes
          for (int i = 0, n = 1 + r.nextInt(4); i < n && m.length > 0; i++) {
            m[r.nextInt(m.length)] ^= (byte) (1 + r.nextInt(255));
          }
        }
        case 2 -> m = java.util.Arrays.copyOf(m, r.nextInt(m.length + 1)); // truncate
        case 3 -> { // random bytes
          m = new byte[r.nextInt(64)];
          r.nextBytes(m);
        }
        case 4 -> { // insert bytes
          byte[] extra = new byte[1 + r.nextInt(8)];
          r.nextBytes(extra);
          int at = r.nextInt(m.length + 1);
          byte[] n = new byte[m.length + extra.length];
          System.arraycopy(m, 0, n, 0, at);
          System.arraycopy(extra, 0, n, at, extra.length);
          System.arraycopy(m, at, n, at + extra.length, m.length - at);
          m = n;
        }
        default -> { // a length beyond the limit, or one that lies
          long len = r.nextBoolean() ? RelayProtocol.MAX_MESSAGE + 1 + r.nextInt(1 << 20) : m.length + 1 + r.nextInt(16);
          out.writeBytes(dev.dsd.p2p.core.Varint.encode(len));
          out.writeBytes(m);
          continue;
        }
      }
      out.writeBytes(dev.dsd.p2p.core.Varint.encode(m.length));
      out.writeBytes(m);
    }
    byte[] b = out.toByteArray();
    return r.nextInt(8) == 0 ? java.util.Arrays.copyOf(b, r.nextInt(b.length + 1)) : b;
  }

  /** Feeds each case in random chunks; returns how many messages were accepted. */
  static <T extends MessageLite> int fuzz(List<byte[]> seeds, Parser<T> parser, Consumer<T> interpret, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int accepted = 0;
    for (int i = 0; i < CASES; i++) {
      byte[] input = mutate(seeds, r);
      int[] ok = {0};
      Throwable[] bad = {null};
      EmbeddedChannel ch = new EmbeddedChannel(new ProtobufFrameDecoder<>(parser, RelayProtocol.MAX_MESSAGE, (ctx, m) -> {
        try {
          interpret.accept(m);
          ok[0]++;
        } catch (P2pException expected) {
          // a clear, typed refusal
        }
      }, (ctx, e) -> {
        if (!(e instanceof P2pException)) {
          bad[0] = e;
        }
        ctx.close();
      }));
      List<ByteBuf> sent = new ArrayList<>();
      for (int off = 0; off < input.length && ch.isOpen();) {
        int n = Math.min(input.length - off, 1 + r.nextInt(r.nextBoolean() ? 8 : 256));
        ByteBuf b = Unpooled.copiedBuffer(input, off, n);
        sent.add(b);
        ch.writeInbound(b);
        off += n;
      }
      ch.finishAndReleaseAll();
      if (bad[0] != null) {
        throw new AssertionError("case " + i + " (seed " + seed + "): " + bad[0], bad[0]);
      }
      for (ByteBuf b : sent) {
        assertEquals(0, b.refCnt(), "case " + i + ": an input buffer was not released");
      }
      accepted += ok[0];
    }
    return accepted;
  }

  @Test
  void hopMessages() {
    int ok = fuzz(hopSeeds(), HopMessage.parser(), m -> {
      if (m.getType() == HopMessage.Type.STATUS) {
        RelayClient.parseReservation(RELAY.peerId(), SELF, m);
      } else if (m.getType() == HopMessage.Type.CONNECT) {
        PeerId.fromBytes(m.getPeer().getId().toByteArray());
      }
    }, 1);
    assertTrue(ok > CASES / 10, "enough cases get through framing to exercise interpretation: " + ok);
  }

  @Test
  void stopMessages() {
    int ok = fuzz(stopSeeds(), StopMessage.parser(), m -> {
      if (m.getType() == StopMessage.Type.CONNECT) {
        PeerId.fromBytes(m.getPeer().getId().toByteArray());
        m.getPeer().getAddrsList().forEach(a -> {
          try {
            Multiaddr.fromBytes(a.toByteArray());
          } catch (P2pException skipped) {
            // an address dsd does not speak is skipped, not an error
          }
        });
      }
    }, 2);
    assertTrue(ok > CASES / 10, "accepted " + ok);
  }

  @Test
  void dcutrMessages() {
    int ok = fuzz(dcutrSeeds(), HolePunch.parser(), DcutrFuzzSupport::dialable, 3);
    assertTrue(ok > CASES / 10, "accepted " + ok);
  }

  @Test
  void liveServicesSurviveGarbage() throws Exception {
    try (NettyHost relay = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        NettyHost peer = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      RelayService service = RelayService.start(relay, RelayLimits.defaults());
      RelayClient.install(relay);
      dev.dsd.p2p.dcutr.Dcutr.install(relay).close();
      RelayClient client = RelayClient.install(peer);
      peer.connect(relay.listenAddrs().get(0).withPeer(relay.peerId())).get(10, TimeUnit.SECONDS);
      SplittableRandom r = new SplittableRandom(4);
      List<java.util.concurrent.CompletableFuture<?>> closed = new ArrayList<>();
      for (int i = 0; i < 600; i++) {
        String protocol = List.of(RelayProtocol.HOP, RelayProtocol.STOP, dev.dsd.p2p.dcutr.Dcutr.ID).get(i % 3);
        List<byte[]> seeds = i % 3 == 0 ? hopSeeds() : i % 3 == 1 ? stopSeeds() : dcutrSeeds();
        byte[] input = mutate(seeds, r);
        java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
        peer.newStream(relay.peerId(), List.of(protocol), s -> {
          s.channel().closeFuture().addListener(f -> done.complete(null));
          s.channel().writeAndFlush(Unpooled.wrappedBuffer(input));
          s.closeWrite();
          s.channel().eventLoop().schedule(() -> s.channel().close(), 2, TimeUnit.SECONDS);
        }).get(10, TimeUnit.SECONDS);
        closed.add(done);
      }
      java.util.concurrent.CompletableFuture.allOf(closed.toArray(new java.util.concurrent.CompletableFuture[0]))
          .get(30, TimeUnit.SECONDS);
      // still serving, and nothing left behind
      assertTrue(peer.ping(relay.peerId()).get(10, TimeUnit.SECONDS) > 0);
      client.reserve(relay.peerId()).get(10, TimeUnit.SECONDS);
      assertEquals(0, service.circuitCount());
      assertEquals(1, relay.connections().size());
    }
  }
}
