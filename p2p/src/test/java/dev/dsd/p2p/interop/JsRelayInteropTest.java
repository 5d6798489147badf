package dev.dsd.p2p.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.p2p.core.PeerId;
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
 * Circuit relay v2 between dsd and js-libp2p (@libp2p/circuit-relay-v2 from the lock file), both
 * ways, over loopback: a js peer reserves on a dsd relay and a dsd peer reaches it through it; a
 * dsd peer reserves on a js relay (checking the js relay's signed voucher) and js and dsd peers
 * reach it through it.
 */
class JsRelayInteropTest {
  static NettyHost host() {
    NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
    h.setStreamHandler(EchoProtocol.ID, EchoProtocol::serve);
    return h;
  }

  @Test
  void jsPeerIsReachableThroughADsdRelay() throws Exception {
    try (NettyHost relay = host(); NettyHost dialer = host()) {
      RelayClient.install(relay);
      RelayService service = RelayService.start(relay, RelayLimits.defaults());
      RelayClient.install(dialer);
      String relayAddr = relay.listenAddrs().get(0).withPeer(relay.peerId()).toString();
      try (JsPeer js = new JsPeer("relay-peer.mjs", List.of("--reserve", relayAddr))) {
        JsonNode circuit = js.call(JsPeer.cmd("circuit"), 30);
        String addr = circuit.get("addrs").get(0).asText();
        assertTrue(addr.startsWith(relayAddr + "/p2p-circuit"), addr);
        assertEquals(1, service.reservationCount());
        PeerId jsId = PeerId.parse(js.peerId);
        Connection c = dialer.connect(Multiaddr.parse(addr).withPeer(jsId)).get(20, TimeUnit.SECONDS);
        assertTrue(c.relayed());
        assertEquals(jsId, c.remotePeer());
        assertTrue(dialer.ping(jsId).get(20, TimeUnit.SECONDS) > 0, "ping through the dsd relay");
        Stream s = dialer.newStream(jsId, List.of(EchoProtocol.ID), x -> { }).get(20, TimeUnit.SECONDS);
        assertTrue(EchoProtocol.roundTrip(s, 256 * 1024, 11).get(60, TimeUnit.SECONDS), "256 KiB echoed by js via the relay");
        assertTrue(service.relayedBytes() > 512 * 1024, "relayed " + service.relayedBytes());
        // and js opens a stream back over the relayed connection
        JsonNode echo = js.call(JsPeer.cmd("echo").put("peer", dialer.peerId().toBase58()).put("bytes", 64 * 1024), 60);
        assertTrue(echo.get("match").asBoolean(), echo.toString());
      }
    }
  }

  @Test
  void dsdPeerIsReachableThroughAJsRelay() throws Exception {
    try (JsPeer jsRelay = new JsPeer("relay-peer.mjs", List.of("--relay"));
        JsPeer jsDialer = new JsPeer("relay-peer.mjs", List.of());
        NettyHost target = host(); NettyHost dialer = host()) {
      RelayClient client = RelayClient.install(target);
      RelayClient.install(dialer);
      PeerId relayId = PeerId.parse(jsRelay.peerId);
      target.connect(Multiaddr.parse(jsRelay.addr)).get(20, TimeUnit.SECONDS);
      RelayClient.Reservation r = client.reserve(relayId).get(20, TimeUnit.SECONDS);
      assertNotNull(r.voucher(), "js relays sign a voucher");
      assertEquals(relayId, r.voucher().relay());
      assertEquals(target.peerId(), r.voucher().peer());
      assertTrue(r.expireUnixSeconds() > System.currentTimeMillis() / 1000, "expires in the future");
      assertTrue(r.limitBytes() > 0, "js relays limit circuits by default");
      String viaRelay = Multiaddr.circuit(Multiaddr.parse(jsRelay.addr)).withPeer(target.peerId()).toString();

      JsonNode dial = jsDialer.call(JsPeer.cmd("dial").put("addr", viaRelay), 30);
      assertEquals(target.peerId().toBase58(), dial.get("peer").asText());
      assertTrue(dial.get("limited").asBoolean(), dial.toString());
      assertTrue(jsDialer.call(JsPeer.cmd("ping").put("peer", target.peerId().toBase58()), 30).get("rtt").asDouble() >= 0);
      JsonNode echo = jsDialer.call(JsPeer.cmd("echo").put("peer", target.peerId().toBase58()).put("bytes", 32 * 1024), 60);
      assertTrue(echo.get("match").asBoolean(), "32 KiB echoed by dsd through the js relay: " + echo);

      Connection c = dialer.connect(Multiaddr.parse(viaRelay)).get(20, TimeUnit.SECONDS);
      assertTrue(c.relayed());
      assertTrue(dialer.ping(target.peerId()).get(20, TimeUnit.SECONDS) > 0, "dsd -> js relay -> dsd");
    }
  }
}
