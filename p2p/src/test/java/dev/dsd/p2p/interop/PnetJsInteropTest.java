package dev.dsd.p2p.interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.pnet.PrivateNetworkException;
import dev.dsd.p2p.pnet.SwarmKey;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A private network of dsd and js-libp2p with @libp2p/pnet, sharing one swarm.key file. */
class PnetJsInteropTest {
  @TempDir
  static Path dir;
  static Path keyFile;
  static JsPeer js;
  static NettyHost java;

  @BeforeAll
  static void start() throws Exception {
    keyFile = dir.resolve("swarm.key");
    Files.writeString(keyFile, SwarmKey.generate().encode());
    js = new JsPeer(List.of("--swarm-key", keyFile.toString()));
    java = new NettyHost(Identity.generate(), HostConfig.loopback().withSwarmKey(SwarmKey.load(keyFile))).start();
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
  void javaDialsJsAndPings() throws Exception {
    PeerId jsId = PeerId.parse(js.peerId);
    java.connect(Multiaddr.parse(js.addr)).get(20, TimeUnit.SECONDS);
    assertTrue(java.ping(jsId).get(20, TimeUnit.SECONDS) > 0, "ping round trip");
  }

  @Test
  void jsDialsJavaAndPings() throws Exception {
    String addr = java.listenAddrs().get(0).withPeer(java.peerId()).toString();
    JsonNode dial = js.call(JsPeer.cmd("dial").put("addr", addr), 30);
    assertEquals(java.peerId().toBase58(), dial.get("peer").asText());
    assertTrue(js.call(JsPeer.cmd("ping").put("peer", java.peerId().toBase58()), 30).get("rtt").asDouble() >= 0);
  }

  @Test
  void jsWithAnotherKeyIsRefused() throws Exception {
    Path other = dir.resolve("other.key");
    Files.writeString(other, SwarmKey.generate().encode());
    try (JsPeer stranger = new JsPeer(List.of("--swarm-key", other.toString()))) {
      String addr = java.listenAddrs().get(0).withPeer(java.peerId()).toString();
      AssertionError e = assertThrows(AssertionError.class, () -> stranger.call(JsPeer.cmd("dial").put("addr", addr), 30));
      assertTrue(e.getMessage().contains("js peer failed"), e.getMessage());
      assertFalse(java.isConnected(PeerId.parse(stranger.peerId)), "java kept no connection to the other swarm");
      assertRefused(stranger);
    }
  }

  @Test
  void publicJsIsRefused() throws Exception {
    try (JsPeer open = new JsPeer()) {
      assertRefused(open);
    }
  }

  static void assertRefused(JsPeer outsider) {
    ExecutionException e = assertThrows(ExecutionException.class,
        () -> java.connect(Multiaddr.parse(outsider.addr)).get(20, TimeUnit.SECONDS));
    assertInstanceOf(PrivateNetworkException.class, e.getCause(), e.getCause().toString());
  }
}
