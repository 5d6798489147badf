package dev.dsd.p2p.pnet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.EchoProtocol;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.Unpooled;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/** Java hosts in and out of private networks, over real loopback TCP. */
class PnetHostTest {
  static NettyHost host(SwarmKey key) {
    NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback().withSwarmKey(key)).start();
    h.setStreamHandler(EchoProtocol.ID, EchoProtocol::serve);
    return h;
  }

  static Multiaddr addr(NettyHost h) {
    return h.listenAddrs().get(0).withPeer(h.peerId());
  }

  /** The dial's failure, which must come well inside the 10 s handshake timeouts. */
  static Throwable dialFails(NettyHost from, NettyHost to) {
    long t0 = System.nanoTime();
    ExecutionException e = assertThrows(ExecutionException.class, () -> from.connect(addr(to)).get(5, TimeUnit.SECONDS));
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertTrue(ms < 3000, "failed only after " + ms + " ms: " + e.getCause());
    return e.getCause();
  }

  /** Neither side keeps the socket or a connection once the upgrade failed. */
  static void noLeaks(NettyHost... hosts) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    for (NettyHost h : hosts) {
      while ((h.openChannels() > 0 || !h.connections().isEmpty()) && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertEquals(0, h.openChannels(), "open TCP connections of " + h.peerId());
      assertEquals(List.of(), h.connections());
    }
  }

  @Test
  void sameKeyConnectsPingsAndCarriesBulkData() throws Exception {
    SwarmKey key = SwarmKey.generate();
    try (NettyHost a = host(key); NettyHost b = host(SwarmKey.of(key.bytes()))) {
      a.connect(addr(b)).get(10, TimeUnit.SECONDS);
      assertTrue(a.ping(b.peerId()).get(10, TimeUnit.SECONDS) > 0);
      assertTrue(b.ping(a.peerId()).get(10, TimeUnit.SECONDS) > 0, "ping back over the same connection");
      Stream s = a.newStream(b.peerId(), List.of(EchoProtocol.ID), x -> { }).get(10, TimeUnit.SECONDS);
      assertTrue(EchoProtocol.roundTrip(s, 4 * 1024 * 1024, 3).get(60, TimeUnit.SECONDS), "4 MiB echoed");
      assertEquals(1, a.openChannels());
      assertEquals(1, b.openChannels());
    }
  }

  @Test
  void wireIsNonceThenEncryptedMultistream() throws Exception {
    SwarmKey key = SwarmKey.generate();
    try (NettyHost a = host(key); Socket raw = new Socket()) {
      InetSocketAddress at = a.listenAddrs().get(0).toInetSocketAddress();
      raw.connect(new InetSocketAddress(at.getHostString(), at.getPort()), 5000);
      raw.setSoTimeout(5000);
      // the listener speaks first: its nonce, then its multistream header
      byte[] got = raw.getInputStream().readNBytes(24 + PnetReader.MULTISTREAM_HEADER.length);
      byte[] header = java.util.Arrays.copyOfRange(got, 24, got.length);
      new PskCipher(key, java.util.Arrays.copyOf(got, 24)).xorInPlace(Unpooled.wrappedBuffer(header), 0, header.length);
      assertArrayEquals(PnetReader.MULTISTREAM_HEADER, header);
    }
  }

  @Test
  void differentKeysFailFastOnBothSides() throws Exception {
    try (NettyHost a = host(SwarmKey.generate()); NettyHost b = host(SwarmKey.generate())) {
      Throwable e = dialFails(a, b);
      assertInstanceOf(PrivateNetworkException.class, e, e.toString());
      assertTrue(e.getMessage().contains("swarm key"), e.getMessage());
      noLeaks(a, b);
    }
  }

  @Test
  void privateHostDialingPublicHostFails() throws Exception {
    try (NettyHost priv = host(SwarmKey.generate()); NettyHost pub = host(null)) {
      Throwable e = dialFails(priv, pub);
      assertInstanceOf(PrivateNetworkException.class, e, e.toString());
      assertTrue(e.getMessage().contains("is not in a private network"), e.getMessage());
      noLeaks(priv, pub);
    }
  }

  @Test
  void publicHostDialingPrivateHostFails() throws Exception {
    try (NettyHost priv = host(SwarmKey.generate()); NettyHost pub = host(null)) {
      dialFails(pub, priv); // the public host cannot know why: it only sees garbage or a close
      noLeaks(priv, pub);
    }
  }

  /** Dials a server that accepts and never writes; returns what the dialer sent before it hung up. */
  static byte[] dialSilent(NettyHost a, Class<? extends Throwable> expected) throws Exception {
    try (ServerSocket silent = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      Multiaddr to = Multiaddr.parse("/ip4/127.0.0.1/tcp/" + silent.getLocalPort());
      ExecutionException e = assertThrows(ExecutionException.class, () -> a.connect(to).get(5, TimeUnit.SECONDS));
      assertInstanceOf(expected, e.getCause(), e.getCause().toString());
      try (Socket accepted = silent.accept(); InputStream in = accepted.getInputStream()) {
        accepted.setSoTimeout(5000);
        // readAllBytes returns only at end of stream: the dialer closed its socket
        return in.readAllBytes();
      }
    } finally {
      noLeaks(a);
    }
  }

  @Test
  void silentRemoteFailsThePrivateHandshakeWithoutLeaking() throws Exception {
    HostConfig cfg = HostConfig.loopback().withSwarmKey(SwarmKey.generate()).withDialTimeout(Duration.ofSeconds(1));
    try (NettyHost a = new NettyHost(Identity.generate(), cfg).start()) {
      byte[] sent = dialSilent(a, PrivateNetworkException.class);
      assertTrue(sent.length > 24, "nonce and encrypted multistream went out: " + sent.length + " bytes");
    }
  }

  @Test
  void timedOutDialClosesItsSocket() throws Exception {
    // public host: multistream's own 10 s timeout is far off, so only the dial timeout can close it
    HostConfig cfg = HostConfig.loopback().withDialTimeout(Duration.ofSeconds(1));
    try (NettyHost a = new NettyHost(Identity.generate(), cfg).start()) {
      dialSilent(a, TimeoutException.class);
    }
  }
}
