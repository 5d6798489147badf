package dev.dsd.p2p.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.EchoProtocol;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.identify.IdentifyProtocol;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.ping.PingProtocol;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** dsd's libp2p against js-libp2p 3.x from npm, in both directions, over loopback TCP. */
class JsInteropTest {
  static final int MIB16 = 16 * 1024 * 1024;
  static JsPeer js;
  static NettyHost java;

  @BeforeAll
  static void start() throws Exception {
    js = new JsPeer();
    java = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
    java.setStreamHandler(EchoProtocol.ID, EchoProtocol::serve);
  }

  @AfterAll
  static void stop() {
    if (js != null) {
      js.close();
    }
    if (java != null) {
      java.close();
    }
  }

  @Test
  void javaDialsJs() throws Exception {
    PeerId jsId = PeerId.parse(js.peerId);
    java.connect(Multiaddr.parse(js.addr)).get(20, TimeUnit.SECONDS);
    assertTrue(java.ping(jsId).get(20, TimeUnit.SECONDS) > 0, "ping round trip");
    IdentifyProtocol.Info info = java.identify(jsId).get(20, TimeUnit.SECONDS);
    assertTrue(info.protocols().contains(PingProtocol.ID), info.protocols().toString());
    assertTrue(info.protocols().contains("/dsd/echo/1.0.0"), info.protocols().toString());
    assertTrue(info.listenAddrs().contains(Multiaddr.parse(js.addr).withoutPeer()), info.listenAddrs().toString());
    Stream s = java.newStream(jsId, List.of(EchoProtocol.ID), x -> { }).get(20, TimeUnit.SECONDS);
    assertTrue(EchoProtocol.roundTrip(s, MIB16, 3).get(120, TimeUnit.SECONDS), "16 MiB echoed by js");
  }

  @Test
  void jsDialsJava() throws Exception {
    String addr = java.listenAddrs().get(0).withPeer(java.peerId()).toString();
    JsonNode dial = js.call(JsPeer.cmd("dial").put("addr", addr), 30);
    assertEquals(java.peerId().toBase58(), dial.get("peer").asText());
    assertTrue(js.call(JsPeer.cmd("ping").put("peer", java.peerId().toBase58()), 30).get("rtt").asDouble() >= 0);
    JsonNode id = js.call(JsPeer.cmd("identify").put("peer", java.peerId().toBase58()), 30);
    List<String> protocols = new ArrayList<>();
    id.get("protocols").forEach(p -> protocols.add(p.asText()));
    assertTrue(protocols.containsAll(List.of(PingProtocol.ID, IdentifyProtocol.ID, EchoProtocol.ID)), protocols.toString());
    List<String> addrs = new ArrayList<>();
    id.get("addrs").forEach(a -> addrs.add(a.asText()));
    assertTrue(addrs.contains(java.listenAddrs().get(0).toString()), addrs.toString());
    JsonNode echo = js.call(JsPeer.cmd("echo").put("peer", java.peerId().toBase58()).put("bytes", MIB16).put("seed", 7), 120);
    assertTrue(echo.get("match").asBoolean(), "16 MiB echoed by java: " + echo);
  }
}
