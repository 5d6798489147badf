package dev.dsd.p2p.autonat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message.ResponseStatus;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.core.Varint;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.fuzz.Mutator;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * AutoNAT messages from a hostile peer: {@value #CASES} mutated requests and as many answers
 * through the parsers (each is accepted within the limits or refused with a protocol error, never
 * anything else), then a few hundred through a live server's streams (each stream ends, the server
 * keeps no stream and still answers a good request). Reproduce with {@code -Ddsd.fuzz.seed=N}.
 */
class AutoNatFuzzTest {
  static final long SEED = Long.getLong("dsd.fuzz.seed", 0xA070L);
  static final int CASES = 10_000;
  static final int LIVE = 200;
  /** Key generation would dominate the run: a few identities serve all cases. */
  static final List<PeerId> IDS = java.util.stream.IntStream.range(0, 8).mapToObj(i -> Identity.generate().peerId())
      .toList();

  static Message validDial(SplittableRandom r) {
    List<Multiaddr> addrs = new ArrayList<>();
    for (int i = r.nextInt(0, 6); i > 0; i--) {
      addrs.add(Multiaddr.parse("/ip4/" + r.nextInt(256) + ".0.0." + r.nextInt(256) + "/tcp/" + r.nextInt(65536)));
    }
    return AutoNatProtocol.dial(IDS.get(r.nextInt(IDS.size())), addrs);
  }

  static Message validResponse(SplittableRandom r) {
    ResponseStatus[] st = ResponseStatus.values();
    return AutoNatProtocol.response(st[r.nextInt(st.length)], r.nextBoolean() ? "text " + r.nextInt() : null,
        r.nextBoolean() ? Multiaddr.parse("/ip6/::" + r.nextInt(1, 9999) + "/tcp/1") : null);
  }

  /** A structurally valid message with hostile contents: odd ids, junk addresses, unknown enums, many addrs. */
  static byte[] hostile(SplittableRandom r) {
    Message.PeerInfo.Builder p = Message.PeerInfo.newBuilder();
    if (r.nextBoolean()) {
      p.setId(ByteString.copyFrom(Mutator.bytes(r, r.nextInt(0, 80))));
    }
    for (int i = r.nextInt(0, 3) == 0 ? r.nextInt(0, 200) : r.nextInt(0, 4); i > 0; i--) {
      p.addAddrs(ByteString.copyFrom(Mutator.bytes(r, r.nextInt(0, 40))));
    }
    Message.Builder m = Message.newBuilder().setDial(Message.Dial.newBuilder().setPeer(p));
    if (r.nextBoolean()) {
      m.setType(r.nextBoolean() ? Message.MessageType.DIAL : Message.MessageType.DIAL_RESPONSE);
    }
    if (r.nextBoolean()) {
      m.setDialResponse(Message.DialResponse.newBuilder().setStatus(ResponseStatus.OK)
          .setStatusText("x".repeat(r.nextInt(0, 2000))).setAddr(ByteString.copyFrom(Mutator.bytes(r, 10))));
    }
    return m.build().toByteArray();
  }

  static byte[] next(SplittableRandom r, boolean request) {
    return switch (r.nextInt(4)) {
      case 0 -> Mutator.bytes(r, r.nextInt(0, 200));
      case 1 -> hostile(r);
      default -> Mutator.mutate(r, (request ? validDial(r) : validResponse(r)).toByteArray());
    };
  }

  @Test
  void parsersAcceptWithinLimitsOrRefuseWithAProtocolError() {
    SplittableRandom r = new SplittableRandom(SEED);
    int[] accepted = new int[2];
    int[] refused = new int[2];
    for (int i = 0; i < CASES; i++) {
      byte[] req = next(r, true);
      try {
        AutoNatProtocol.DialRequest d = AutoNatProtocol.parseDial(req);
        assertTrue(d.addrs().size() <= AutoNatProtocol.MAX_ADDRS && d.peer() != null);
        accepted[0]++;
      } catch (ProtocolViolationException e) {
        refused[0]++;
      } catch (RuntimeException e) {
        throw new AssertionError("case " + i + " (seed " + SEED + ") escaped as " + e, e);
      }
      byte[] resp = next(r, false);
      try {
        AutoNatProtocol.DialResponse d = AutoNatProtocol.parseResponse(resp);
        assertTrue(d.text().length() <= AutoNatProtocol.MAX_TEXT && d.status() != null);
        accepted[1]++;
      } catch (ProtocolViolationException e) {
        refused[1]++;
      } catch (RuntimeException e) {
        throw new AssertionError("case " + i + " (seed " + SEED + ") escaped as " + e, e);
      }
    }
    // both outcomes occur, or the fuzzer is not reaching the parser's corners
    assertTrue(accepted[0] > 100 && refused[0] > 100, "requests accepted/refused " + accepted[0] + "/" + refused[0]);
    assertTrue(accepted[1] > 100 && refused[1] > 100, "answers accepted/refused " + accepted[1] + "/" + refused[1]);
  }

  @Test
  void aLiveServerEndsEveryFuzzedStreamAndKeepsServing() throws Exception {
    SplittableRandom r = new SplittableRandom(SEED + 1);
    try (NettyHost server = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        AutoNatService svc = new AutoNatService(server, true, 2);
        NettyHost fuzzer = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        NettyHost honest = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      fuzzer.connect(server.listenAddrs().get(0).withPeer(server.peerId())).get(10, TimeUnit.SECONDS);
      List<Stream> streams = new ArrayList<>();
      for (int i = 0; i < LIVE; i++) {
        byte[] body = next(r, true);
        ByteBuf frame = Unpooled.buffer();
        int kind = r.nextInt(10);
        if (kind == 0) {
          Varint.write(frame, AutoNatProtocol.MAX_MESSAGE + 1 + r.nextInt(1 << 20)); // over the limit
        } else if (kind == 1) {
          Varint.write(frame, body.length + 1 + r.nextInt(100)); // promises more than comes
        } else {
          Varint.write(frame, body.length);
        }
        frame.writeBytes(body);
        Stream s = fuzzer.newStream(server.peerId(), List.of(AutoNatProtocol.ID), st -> {
          st.channel().pipeline().addLast(new ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(ChannelHandlerContext ctx, Object msg) {
              ((ByteBuf) msg).release();
            }
          });
          st.channel().writeAndFlush(frame);
          st.closeWrite();
        }).get(10, TimeUnit.SECONDS);
        streams.add(s);
      }
      for (int i = 0; i < streams.size(); i++) {
        assertTrue(streams.get(i).channel().closeFuture().await(15, TimeUnit.SECONDS), "stream " + i + " ended");
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (server.connections().stream().mapToInt(c -> c.muxer().streamCount()).sum() > 0
          && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertEquals(0, server.connections().stream().mapToInt(c -> c.muxer().streamCount()).sum(),
          "the server keeps no fuzzed stream");
      assertTrue(server.isConnected(fuzzer.peerId()), "bad requests are refused, the connection stays");
      honest.connect(server.listenAddrs().get(0).withPeer(server.peerId())).get(10, TimeUnit.SECONDS);
      PeerId me = honest.peerId();
      AutoNatProtocol.DialResponse ok = AutoNatTest.ask(honest, server, AutoNatProtocol.dial(me, honest.listenAddrs()));
      assertEquals(ResponseStatus.OK, ok.status(), ok.text());
    }
  }
}
