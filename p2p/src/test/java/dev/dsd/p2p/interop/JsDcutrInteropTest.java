package dev.dsd.p2p.interop;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.dcutr.Dcutr;
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
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * DCUtR between dsd and js-libp2p (@libp2p/dcutr from the lock file), both roles, through a dsd
 * relay on loopback: the side the relayed connection came in to initiates (sends CONNECT, measures
 * the RTT, sends SYNC), the other answers and dials at once; both end with a direct connection that
 * new streams use. On loopback both listeners are reachable, so this proves the message exchange
 * and the roles of the resulting connection, not NAT traversal (testnet/nat.sh does that). js only
 * dials public addresses for DCUtR; relay-peer.mjs --dcutr-loopback lifts that for loopback.
 */
class JsDcutrInteropTest {
  static NettyHost host() {
    NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
    h.setStreamHandler(EchoProtocol.ID, EchoProtocol::serve);
    return h;
  }

  /** dsd dials js through the relay: js holds the inbound relayed connection and initiates. */
  @Test
  void jsInitiatesAndDsdAnswers() throws Exception {
    try (NettyHost relay = host(); NettyHost dsd = host()) {
      RelayService.start(relay, RelayLimits.defaults());
      RelayClient.install(dsd);
      dsd.setDialFromListenPort(true);
      String relayAddr = relay.listenAddrs().get(0).withPeer(relay.peerId()).toString();
      try (Dcutr d = Dcutr.install(dsd);
          JsPeer js = new JsPeer("relay-peer.mjs", List.of("--reserve", relayAddr, "--dcutr-loopback"))) {
        String circuit = js.call(JsPeer.cmd("circuit"), 30).get("addrs").get(0).asText();
        PeerId jsId = PeerId.parse(js.peerId);
        Connection relayed = dsd.connect(Multiaddr.parse(circuit).withPeer(jsId)).get(20, TimeUnit.SECONDS);
        assertTrue(relayed.relayed());
        waitFor(() -> direct(dsd, jsId), "a direct connection dsd - js");
        waitFor(() -> jsDirectTo(js, dsd.peerId()), "js sees a direct connection to dsd");
        Stream s = dsd.newStream(jsId, List.of(EchoProtocol.ID), x -> { }).get(20, TimeUnit.SECONDS);
        assertFalse(s.channel().parent() instanceof dev.dsd.p2p.yamux.YamuxStreamChannel, "the stream is direct");
        assertTrue(EchoProtocol.roundTrip(s, 256 * 1024, 3).get(30, TimeUnit.SECONDS), "256 KiB echoed by js, directly");
      }
    }
  }

  /** js dials dsd through the relay: dsd holds the inbound relayed connection and initiates. */
  @Test
  void dsdInitiatesAndJsAnswers() throws Exception {
    try (NettyHost relay = host(); NettyHost dsd = host()) {
      RelayService.start(relay, RelayLimits.defaults());
      RelayClient client = RelayClient.install(dsd);
      dsd.setDialFromListenPort(true);
      try (Dcutr d = Dcutr.install(dsd); JsPeer js = new JsPeer("relay-peer.mjs", List.of("--dcutr-loopback"))) {
        dsd.connect(relay.listenAddrs().get(0).withPeer(relay.peerId())).get(20, TimeUnit.SECONDS);
        client.reserve(relay.peerId()).get(20, TimeUnit.SECONDS);
        PeerId jsId = PeerId.parse(js.peerId);
        String viaRelay = Multiaddr.circuit(relay.listenAddrs().get(0).withPeer(relay.peerId()))
            .withPeer(dsd.peerId()).toString();
        JsonNode dial = js.call(JsPeer.cmd("dial").put("addr", viaRelay), 30);
        assertTrue(dial.get("addr").asText().contains("/p2p-circuit"), dial.toString());
        waitFor(() -> direct(dsd, jsId), "a direct connection dsd - js");
        waitFor(() -> jsDirectTo(js, dsd.peerId()), "js sees a direct connection to dsd");
        JsonNode echo = js.call(JsPeer.cmd("echo").put("peer", dsd.peerId().toBase58()).put("bytes", 64 * 1024), 60);
        assertTrue(echo.get("match").asBoolean(), "64 KiB echoed by dsd: " + echo);
      }
    }
  }

  private static boolean direct(NettyHost h, PeerId peer) {
    return h.connections().stream().anyMatch(c -> c.remotePeer().equals(peer) && !c.relayed() && c.isOpen());
  }

  private static boolean jsDirectTo(JsPeer js, PeerId peer) {
    try {
      for (JsonNode c : js.call(JsPeer.cmd("connections"), 10).get("connections")) {
        if (c.get("peer").asText().equals(peer.toBase58()) && !c.get("addr").asText().contains("/p2p-circuit")) {
          return true;
        }
      }
      return false;
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static void waitFor(BooleanSupplier cond, String what) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(50);
    }
  }
}
