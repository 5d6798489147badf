package dev.dsd.p2p.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.KadDht;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Finished streams are gone on both sides: many pings and Kademlia queries on one connection, in
 * both directions, with js-libp2p's per-protocol stream limits (ping: 1 outbound, 2 inbound; kad: 64
 * outbound, 32 inbound) far below the number of streams used.
 */
class JsStreamLifecycleTest {
  static final int PINGS = 5;
  static final int QUERIES = 70;

  JsPeer js;
  NettyHost java;
  KadDht dht;
  PeerId jsId;

  @BeforeEach
  void start() throws Exception {
    // js's 10 s connection monitor pings through the same one-stream limit as the pings counted here
    js = new JsPeer(List.of("--no-connection-monitor"));
    java = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
    dht = new KadDht(java, true, Map.of());
    jsId = PeerId.parse(js.peerId);
  }

  @AfterEach
  void stop() {
    if (dht != null) {
      dht.close();
    }
    if (java != null) {
      java.close();
    }
    if (js != null) {
      js.close();
    }
  }

  @Test
  void jsPingsJavaFiveTimesOnOneConnection() throws Exception {
    js.call(JsPeer.cmd("dial").put("addr", java.listenAddrs().get(0).withPeer(java.peerId()).toString()), 30);
    // js's kad-dht pings a new contact (java serves /ipfs/kad/1.0.0) before adding it to its table,
    // with the same ping service, whose limit is one outbound stream: a ping of ours overlapping that
    // one is refused ("2/1") by js whatever the remote does. Let it finish first.
    js.call(JsPeer.cmd("identify").put("peer", java.peerId().toBase58()), 30);
    awaitTrue(() -> jsRoutingTableHasJava(), () -> "js never added java to its routing table");
    String connId = onlyConnection().get("id").asText();
    JsonNode r = js.call(JsPeer.cmd("pings").put("peer", java.peerId().toBase58()).put("count", PINGS), 60);
    assertEquals(PINGS, r.get("rtts").size());
    assertEquals(connId, onlyConnection().get("id").asText(), "all pings went over the first connection");
    awaitTrue(() -> openJsStreams("/ipfs/ping/1.0.0") == 0, () -> "js still holds ping streams: " + streams());
    awaitTrue(() -> javaStreams() == 0, () -> "dsd still holds " + javaStreams() + " streams");
  }

  @Test
  void javaPingsJsFiveTimesOnOneConnection() throws Exception {
    Connection c = java.connect(Multiaddr.parse(js.addr)).get(20, TimeUnit.SECONDS);
    for (int i = 0; i < PINGS; i++) {
      assertTrue(java.ping(jsId).get(20, TimeUnit.SECONDS) > 0, "ping " + i);
    }
    assertEquals(List.of(c), java.connections(), "one connection for all pings");
    awaitTrue(() -> javaStreams() == 0, () -> "dsd still holds " + javaStreams() + " streams");
    awaitTrue(() -> openJsStreams("/ipfs/ping/1.0.0") == 0, () -> "js still holds ping streams: " + streams());
  }

  @Test
  void jsQueriesJavasDhtRepeatedlyOnOneConnection() throws Exception {
    js.call(JsPeer.cmd("dial").put("addr", java.listenAddrs().get(0).withPeer(java.peerId()).toString()), 30);
    // js adds java to its table once identify shows /ipfs/kad/1.0.0
    js.call(JsPeer.cmd("identify").put("peer", java.peerId().toBase58()), 30);
    String connId = onlyConnection().get("id").asText();
    JsonNode r = js.call(JsPeer.cmd("closestPeers").put("key", "lifecycle").put("count", QUERIES), 120);
    assertTrue(r.get("answers").asInt() >= QUERIES, "every lookup got java's answer: " + r);
    assertEquals(connId, onlyConnection().get("id").asText());
    awaitTrue(() -> openJsStreams("/ipfs/kad/1.0.0") == 0, () -> "js still holds kad streams: " + streams());
    awaitTrue(() -> javaStreams() == 0, () -> "dsd still holds " + javaStreams() + " streams");
  }

  @Test
  void javaQueriesJsDhtRepeatedlyOnOneConnection() throws Exception {
    dht.bootstrap(List.of(Multiaddr.parse(js.addr))).get(30, TimeUnit.SECONDS);
    assertTrue(dht.routingTable().contains(jsId));
    Connection c = java.connections().get(0);
    for (int i = 0; i < QUERIES; i++) {
      List<PeerId> got = dht.closestPeers(("lifecycle" + i).getBytes(StandardCharsets.UTF_8)).get(20, TimeUnit.SECONDS);
      assertEquals(List.of(jsId), got, "query " + i + " answered by js");
    }
    assertEquals(List.of(c), java.connections());
    awaitTrue(() -> javaStreams() == 0, () -> "dsd still holds " + javaStreams() + " streams");
    awaitTrue(() -> openJsStreams("/ipfs/kad/1.0.0") == 0, () -> "js still holds kad streams: " + streams());
  }

  @Test
  void jsAnswersKeepalivePingsSoTheConnectionStays() throws Exception {
    try (NettyHost fast = new NettyHost(Identity.generate(),
        HostConfig.loopback().withKeepAlive(Duration.ofMillis(100))).start()) {
      Connection c = fast.connect(Multiaddr.parse(js.addr)).get(20, TimeUnit.SECONDS);
      long rtt = c.muxer().ping().get(5, TimeUnit.SECONDS);
      assertTrue(rtt > 0, "js answers a yamux ping");
      Thread.sleep(1000); // ten keepalive rounds
      assertTrue(c.channel().isActive() && fast.isConnected(jsId), "still connected after keepalives");
      assertEquals(List.of(c), fast.connections());
    }
  }

  private JsonNode streams() {
    try {
      return js.call(JsPeer.cmd("streams").put("peer", java.peerId().toBase58()), 10).get("connections");
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private JsonNode onlyConnection() {
    JsonNode conns = streams();
    assertEquals(1, conns.size(), "js has one connection to java: " + conns);
    return conns.get(0);
  }

  private int openJsStreams(String protocol) {
    int n = 0;
    for (JsonNode c : streams()) {
      for (JsonNode s : c.get("streams")) {
        n += s.asText().equals(protocol) ? 1 : 0;
      }
    }
    return n;
  }

  private boolean jsRoutingTableHasJava() {
    try {
      return js.call(JsPeer.cmd("routingTable").put("peer", java.peerId().toBase58()), 10).get("contains").asBoolean();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private int javaStreams() {
    List<Connection> cs = new ArrayList<>(java.connections());
    return cs.stream().mapToInt(c -> c.muxer().streamCount()).sum();
  }

  static void awaitTrue(BooleanSupplier cond, Supplier<String> message) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(message.get());
      }
      Thread.sleep(50);
    }
  }
}
