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
import java.util.List;
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
