package dev.dsd.p2p.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.yamux.YamuxFrame;
import dev.dsd.p2p.yamux.YamuxSession;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** Keepalive, GO_AWAY and half-open handshakes: what leaves the host's map, and what is refused. */
class ConnectionLifecycleTest {
  static NettyHost host(HostConfig c) {
    return new NettyHost(Identity.generate(), c).start();
  }

  @Test
  void aReceivedGoAwayRetiresTheConnectionAndTheNextStreamRedials() throws Exception {
    try (NettyHost a = host(HostConfig.loopback()); NettyHost b = host(HostConfig.loopback())) {
      Connection first = a.connect(b.listenAddrs().get(0).withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
      awaitTrue(() -> b.isConnected(a.peerId()), "b registered the connection");
      Connection atB = b.connections().get(0);
      // b says GO_AWAY but keeps the TCP connection open, as a draining peer does
      atB.channel().eventLoop().submit(() -> atB.channel().pipeline().context(YamuxSession.class)
          .writeAndFlush(new YamuxFrame(YamuxFrame.GO_AWAY, 0, 0, YamuxFrame.GO_AWAY_NORMAL, null))).sync();
      awaitTrue(() -> !a.isConnected(b.peerId()), "a dropped the go-away'd connection from its map");
      assertTrue(a.ping(b.peerId()).get(10, TimeUnit.SECONDS) > 0, "the next stream redials");
      Connection second = a.connections().get(0);
      assertNotSame(first, second);
      awaitTrue(() -> !first.channel().isActive(), "the retired connection closed once idle");
    }
  }

  @Test
  void keepaliveKeepsLiveConnectionsAndDropsDeadOnes() throws Exception {
    HostConfig fast = HostConfig.loopback().withKeepAlive(Duration.ofMillis(100)).withDialTimeout(Duration.ofMillis(600));
    try (NettyHost a = host(fast); NettyHost b = host(HostConfig.loopback())) {
      Connection c = a.connect(b.listenAddrs().get(0).withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
      Thread.sleep(800); // several keepalive rounds, each answered
      assertTrue(c.channel().isActive() && a.isConnected(b.peerId()), "a live connection stays");
      // b stops reading: its side of the connection is as good as dead to a
      awaitTrue(() -> b.isConnected(a.peerId()), "b registered the connection");
      Connection atB = b.connections().get(0);
      atB.channel().eventLoop().submit(() -> atB.channel().config().setAutoRead(false)).sync();
      awaitTrue(() -> !c.channel().isActive() && !a.isConnected(b.peerId()), "a dropped the dead connection");
      assertTrue(a.ping(b.peerId()).get(10, TimeUnit.SECONDS) > 0, "and redials on the next stream");
    }
  }

  @Test
  void halfOpenHandshakesAreCountedApartAndLimitedPerIp() throws Exception {
    HostConfig limited = HostConfig.loopback().withMaxConnections(2).withPendingLimits(4, 2)
        .withDialTimeout(Duration.ofSeconds(2));
    try (NettyHost b = host(limited); NettyHost c = host(HostConfig.loopback());
        NettyHost a = host(HostConfig.loopback())) {
      InetSocketAddress at = new InetSocketAddress("127.0.0.1", b.listenAddrs().get(0).toInetSocketAddress().getPort());
      List<Socket> flood = new ArrayList<>();
      try {
        for (int i = 0; i < 6; i++) {
          Socket s = new Socket();
          s.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.2"), 0)); // another source IP
          s.connect(at, 2000);
          flood.add(s); // says nothing: a half-open handshake
        }
        awaitTrue(() -> b.pendingHandshakes() == 2, "only 2 pending from 127.0.0.2, got " + b.pendingHandshakes());
        // b's own dial is not blocked by the flood, nor is a peer from another address
        b.connect(c.listenAddrs().get(0).withPeer(c.peerId())).get(10, TimeUnit.SECONDS);
        a.connect(b.listenAddrs().get(0).withPeer(b.peerId())).get(10, TimeUnit.SECONDS);
        awaitTrue(() -> b.establishedConnections() == 2, "two established at b");
        // established connections have their own limit: a third peer is refused
        try (NettyHost d = host(HostConfig.loopback())) {
          d.connect(b.listenAddrs().get(0).withPeer(b.peerId())).handle((x, e) -> x).get(10, TimeUnit.SECONDS);
          awaitTrue(() -> !d.isConnected(b.peerId()), "b closed a connection over maxConnections");
          assertEquals(2, b.establishedConnections());
        }
      } finally {
        for (Socket s : flood) {
          s.close();
        }
      }
      awaitTrue(() -> b.pendingHandshakes() == 0, "slots given back");
    }
  }

  @Test
  void silentHandshakesGiveTheirSlotBackAfterTheDialTimeout() throws Exception {
    HostConfig limited = HostConfig.loopback().withPendingLimits(4, 1).withDialTimeout(Duration.ofMillis(500));
    try (NettyHost b = host(limited); Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", b.listenAddrs().get(0).toInetSocketAddress().getPort()), 2000);
      awaitTrue(() -> b.pendingHandshakes() == 1, "pending");
      awaitTrue(() -> b.pendingHandshakes() == 0 && b.openChannels() == 0, "timed out and closed");
    }
  }

  static void awaitTrue(BooleanSupplier cond, String message) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(message);
      }
      Thread.sleep(20);
    }
  }
}
