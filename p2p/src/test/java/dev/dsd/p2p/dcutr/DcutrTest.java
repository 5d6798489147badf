package dev.dsd.p2p.dcutr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.EchoProtocol;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.relay.RelayClient;
import dev.dsd.p2p.relay.RelayLimits;
import dev.dsd.p2p.relay.RelayService;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * On loopback every peer is directly reachable, so DCUtR must always find the direct path: A's
 * relayed connection from B is replaced by a direct one, new streams use it, the relayed one goes.
 * (Behind real NAT, with TCP simultaneous open, testnet/nat.sh proves it.)
 */
class DcutrTest {
  static NettyHost host() {
    NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
    h.setStreamHandler(EchoProtocol.ID, EchoProtocol::serve);
    return h;
  }

  @Test
  void relayedConnectionBecomesDirect() throws Exception {
    try (NettyHost r = host(); NettyHost a = host(); NettyHost b = host()) {
      RelayService relay = RelayService.start(r, RelayLimits.defaults());
      RelayClient ca = RelayClient.install(a);
      RelayClient.install(b);
      // as AutoRelay does for a node behind NAT: outbound connections leave from the listen port,
      // so the address the relay observes is the one the hole punch dials
      a.setDialFromListenPort(true);
      b.setDialFromListenPort(true);
      try (Dcutr da = Dcutr.install(a); Dcutr db = Dcutr.install(b)) {
        a.connect(r.listenAddrs().get(0).withPeer(r.peerId())).get(10, TimeUnit.SECONDS);
        ca.reserve(r.peerId()).get(10, TimeUnit.SECONDS);
        long start = System.nanoTime();
        Connection relayed = b.connect(Multiaddr.circuit(r.listenAddrs().get(0).withPeer(r.peerId()))
            .withPeer(a.peerId())).get(10, TimeUnit.SECONDS);
        assertTrue(relayed.relayed());
        waitFor(() -> b.connections().stream().anyMatch(c -> c.remotePeer().equals(a.peerId()) && !c.relayed()),
            "a direct connection b -> a");
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertTrue(ms < 5000, "direct after " + ms + " ms");
        Stream s = b.newStream(a.peerId(), List.of(EchoProtocol.ID), x -> { }).get(10, TimeUnit.SECONDS);
        assertFalse(s.channel().parent() instanceof dev.dsd.p2p.yamux.YamuxStreamChannel, "new stream on the direct connection");
        assertTrue(EchoProtocol.roundTrip(s, 1 << 20, 5).get(30, TimeUnit.SECONDS));
        long relayedBefore = relay.relayedBytes();
        waitFor(() -> !relayed.isOpen(), "the idle relayed connection closed");
        assertTrue(relay.relayedBytes() < relayedBefore + 4096, "the MiB did not pass the relay");
        assertEquals(0, a.connections().stream().filter(Connection::relayed).count());
      }
    }
  }

  /**
   * The hole punch dials from the listen port: the address a peer must aim at is the observed IP with
   * our listen port, first, even when the only observation came from a connection dialed from an
   * ephemeral port (its port maps nothing the punch uses).
   */
  @Test
  void connectOffersTheObservedIpWithTheListenPortFirst() throws Exception {
    try (NettyHost a = host(); NettyHost b = host(); Dcutr da = Dcutr.install(a)) {
      Connection c = a.connect(b.listenAddrs().get(0).withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
      a.identify(b.peerId()).get(10, TimeUnit.SECONDS);
      int listenPort = a.listenAddrs().get(0).toInetSocketAddress().getPort();
      int localPort = ((java.net.InetSocketAddress) c.channel().localAddress()).getPort();
      assertTrue(localPort != listenPort, "this dial left from an ephemeral port");
      List<Multiaddr> offered = da.ourAddrs();
      assertEquals(Multiaddr.parse("/ip4/127.0.0.1/tcp/" + listenPort), offered.get(0), offered.toString());
      assertTrue(offered.contains(Multiaddr.parse("/ip4/127.0.0.1/tcp/" + localPort)), "the raw observation stays: " + offered);
    }
  }

  @Test
  void listenPortCandidateKeepsTheIpFamily() {
    assertEquals(Multiaddr.parse("/ip4/203.0.113.11/tcp/4001"),
        Dcutr.withPortOf(Multiaddr.parse("/ip4/203.0.113.11/tcp/41540"), Multiaddr.parse("/ip4/10.1.0.2/tcp/4001")));
    assertEquals(null, Dcutr.withPortOf(Multiaddr.parse("/ip6/2001:db8::1/tcp/41540"),
        Multiaddr.parse("/ip4/10.1.0.2/tcp/4001")));
  }

  /**
   * A session already running over the relay when the direct connection comes up keeps running
   * there (a stream cannot move between connections); new streams take the direct connection, and
   * the relayed connection closes once that last stream has ended.
   */
  @Test
  void aLiveRelayedStreamEndsOnTheRelayWhileNewStreamsGoDirect() throws Exception {
    try (NettyHost r = host(); NettyHost a = host(); NettyHost b = host()) {
      RelayService relay = RelayService.start(r, RelayLimits.defaults());
      RelayClient ca = RelayClient.install(a);
      RelayClient.install(b);
      a.setDialFromListenPort(true);
      b.setDialFromListenPort(true);
      // a opens the session from its connect listener, which runs before DCUtR's (installed after it):
      // the relayed connection is the only one then, so the session starts on the relay
      CompletableFuture<Stream> live = new CompletableFuture<>();
      BlockingQueue<String> echoes = new LinkedBlockingQueue<>();
      a.onConnect(c -> {
        if (c.relayed() && c.remotePeer().equals(b.peerId())) {
          a.newStream(b.peerId(), List.of(EchoProtocol.ID), s -> s.channel().pipeline().addLast(
              new ChannelInboundHandlerAdapter() {
                @Override
                public void channelRead(ChannelHandlerContext ctx, Object msg) {
                  echoes.add(((ByteBuf) msg).toString(StandardCharsets.UTF_8));
                  ((ByteBuf) msg).release();
                }
              })).whenComplete((s, e) -> {
                if (e != null) {
                  live.completeExceptionally(e);
                } else {
                  live.complete(s);
                }
              });
        }
      });
      try (Dcutr da = Dcutr.install(a); Dcutr db = Dcutr.install(b)) {
        a.connect(r.listenAddrs().get(0).withPeer(r.peerId())).get(10, TimeUnit.SECONDS);
        ca.reserve(r.peerId()).get(10, TimeUnit.SECONDS);
        Connection relayed = b.connect(Multiaddr.circuit(r.listenAddrs().get(0).withPeer(r.peerId()))
            .withPeer(a.peerId())).get(10, TimeUnit.SECONDS);
        Stream session = live.get(10, TimeUnit.SECONDS);
        assertTrue(session.channel().parent() instanceof dev.dsd.p2p.yamux.YamuxStreamChannel, "the session is relayed");
        assertEquals("before", echo(session, echoes, "before"));
        waitFor(() -> b.connections().stream().anyMatch(c -> c.remotePeer().equals(a.peerId()) && !c.relayed()),
            "a direct connection b -> a");

        Stream fresh = b.newStream(a.peerId(), List.of(EchoProtocol.ID), x -> { }).get(10, TimeUnit.SECONDS);
        assertFalse(fresh.channel().parent() instanceof dev.dsd.p2p.yamux.YamuxStreamChannel, "a new stream goes direct");
        assertTrue(EchoProtocol.roundTrip(fresh, 64 * 1024, 7).get(30, TimeUnit.SECONDS));
        // the live session still works, over the relay, which stays while it lasts
        Thread.sleep(2 * Dcutr.RELAYED_IDLE_CHECK.toMillis());
        long relayedBefore = relay.relayedBytes();
        assertEquals("after", echo(session, echoes, "after"));
        assertTrue(relay.relayedBytes() > relayedBefore, "the live session's bytes still pass the relay");
        assertTrue(relayed.isOpen(), "the relayed connection stays while a stream is on it");

        session.channel().close();
        waitFor(() -> !relayed.isOpen(), "the relayed connection closed once its last stream ended");
        assertEquals(0, a.connections().stream().filter(Connection::relayed).count());
        assertEquals(0, b.connections().stream().filter(Connection::relayed).count());
      }
    }
  }

  private static String echo(Stream s, BlockingQueue<String> echoes, String text) throws InterruptedException {
    s.channel().writeAndFlush(Unpooled.copiedBuffer(text, StandardCharsets.UTF_8));
    StringBuilder got = new StringBuilder();
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (got.length() < text.length() && System.nanoTime() < end) {
      String part = echoes.poll(100, TimeUnit.MILLISECONDS);
      if (part != null) {
        got.append(part);
      }
    }
    return got.toString();
  }

  static void waitFor(java.util.function.BooleanSupplier cond, String what) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(40);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(20);
    }
  }
}
