package dev.dsd.p2p.identify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.core.Varint;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.fuzz.Mutator;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.PeerStore;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.identify.proto.IdentifyProto.Identify;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * identify push ({@code /ipfs/id/push/1.0.0}) from a hostile peer: {@value #CASES} mutated messages
 * through the parser (accepted within the limits, or refused with a protocol error), then a few
 * hundred pushed over a live connection (every stream ends, the receiver keeps no stream, its
 * peer store stays bounded and identify still works). Reproduce with {@code -Ddsd.fuzz.seed=N}.
 */
class IdentifyPushFuzzTest {
  static final long SEED = Long.getLong("dsd.fuzz.seed", 0x1D5L);
  static final int CASES = 10_000;
  static final int LIVE = 200;

  static Identify valid(SplittableRandom r, Identity id) {
    List<Multiaddr> addrs = new ArrayList<>();
    for (int i = r.nextInt(0, 5); i > 0; i--) {
      addrs.add(Multiaddr.parse("/ip4/10.0." + r.nextInt(256) + ".1/tcp/" + r.nextInt(65536)));
    }
    List<String> protocols = new ArrayList<>();
    for (int i = r.nextInt(0, 5); i > 0; i--) {
      protocols.add("/p/" + r.nextInt(1000));
    }
    return IdentifyProtocol.message(id.publicKeyProto(), "fuzz/" + r.nextInt(), protocols, addrs,
        new InetSocketAddress("127.0.0.1", 4001));
  }

  static byte[] hostile(SplittableRandom r, Identity id) {
    Identify.Builder b = valid(r, id).toBuilder();
    for (int i = r.nextInt(0, 3) == 0 ? r.nextInt(0, 300) : r.nextInt(0, 3); i > 0; i--) {
      b.addListenAddrs(ByteString.copyFrom(Mutator.bytes(r, r.nextInt(0, 30))));
      b.addProtocols("/junk/" + r.nextInt());
    }
    if (r.nextBoolean()) {
      b.setObservedAddr(ByteString.copyFrom(Mutator.bytes(r, r.nextInt(0, 30))));
    }
    if (r.nextInt(4) == 0) {
      b.setPublicKey(ByteString.copyFrom(Mutator.bytes(r, r.nextInt(0, 60))));
    }
    return b.build().toByteArray();
  }

  static byte[] next(SplittableRandom r, Identity id) {
    return switch (r.nextInt(4)) {
      case 0 -> Mutator.bytes(r, r.nextInt(0, 200));
      case 1 -> hostile(r, id);
      default -> Mutator.mutate(r, valid(r, id).toByteArray());
    };
  }

  /** As {@link #next}, from a pool of valid encodings built once: building each would dominate the run. */
  static byte[] next(SplittableRandom r, Identity id, List<byte[]> pool) {
    return switch (r.nextInt(4)) {
      case 0 -> Mutator.bytes(r, r.nextInt(0, 200));
      case 1 -> r.nextInt(8) == 0 ? hostile(r, id) : Mutator.mutate(r, pool.get(r.nextInt(pool.size())));
      default -> Mutator.mutate(r, pool.get(r.nextInt(pool.size())));
    };
  }

  @Test
  void theParserAcceptsWithinLimitsOrRefusesWithAProtocolError() {
    SplittableRandom r = new SplittableRandom(SEED);
    Identity id = Identity.generate();
    List<byte[]> pool = new ArrayList<>();
    for (int i = 0; i < 64; i++) {
      pool.add(valid(r, id).toByteArray());
    }
    int accepted = 0;
    int refused = 0;
    for (int i = 0; i < CASES; i++) {
      try {
        IdentifyProtocol.Info info = IdentifyProtocol.parse(id.peerId(), next(r, id, pool));
        assertEquals(id.peerId(), info.peer());
        accepted++;
      } catch (ProtocolViolationException e) {
        refused++;
      } catch (RuntimeException e) {
        throw new AssertionError("case " + i + " (seed " + SEED + ") escaped as " + e, e);
      }
    }
    assertTrue(accepted > 100 && refused > 100, "accepted/refused " + accepted + "/" + refused);
  }

  @Test
  void aReceiverEndsEveryPushedStreamStaysBoundedAndKeepsWorking() throws Exception {
    SplittableRandom r = new SplittableRandom(SEED + 1);
    Identity fuzzerId = Identity.generate();
    try (NettyHost receiver = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        NettyHost fuzzer = new NettyHost(fuzzerId, HostConfig.loopback()).start()) {
      fuzzer.connect(receiver.listenAddrs().get(0).withPeer(receiver.peerId())).get(10, TimeUnit.SECONDS);
      List<Stream> streams = new ArrayList<>();
      for (int i = 0; i < LIVE; i++) {
        byte[] body = next(r, fuzzerId);
        ByteBuf frame = Unpooled.buffer();
        int kind = r.nextInt(10);
        Varint.write(frame, kind == 0 ? IdentifyProtocol.MAX_MESSAGE + 1 + r.nextInt(1 << 20)
            : kind == 1 ? body.length + 1 + r.nextInt(100) : body.length);
        frame.writeBytes(body);
        streams.add(fuzzer.newStream(receiver.peerId(), List.of(IdentifyProtocol.PUSH), st -> {
          st.channel().writeAndFlush(frame);
          st.closeWrite();
        }).get(10, TimeUnit.SECONDS));
      }
      for (int i = 0; i < streams.size(); i++) {
        assertTrue(streams.get(i).channel().closeFuture().await(15, TimeUnit.SECONDS), "stream " + i + " ended");
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (streamsAt(receiver) > 0 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertEquals(0, streamsAt(receiver), "the receiver keeps no pushed stream");
      PeerId f = fuzzer.peerId();
      assertTrue(receiver.peerStore().addrs(f).size() <= PeerStore.MAX_ADDRS_PER_PEER);
      assertTrue(receiver.peerStore().protocols(f).size() <= PeerStore.MAX_PROTOCOLS_PER_PEER);
      assertTrue(receiver.isConnected(f), "bad pushes are dropped, the connection stays");
      IdentifyProtocol.Info back = fuzzer.identify(receiver.peerId()).get(10, TimeUnit.SECONDS);
      assertEquals(receiver.peerId(), back.peer());
    }
  }

  static int streamsAt(NettyHost h) {
    return h.connections().stream().mapToInt(c -> c.muxer().streamCount()).sum();
  }
}
