package dev.dsd.p2p.interop;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.KadDht;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Provider records across implementations: js finds Java's, Java finds js's. */
class JsKadInteropTest {

  /** js's key for a CIDv1 raw sha2-256 of {@code name}: the CID's multihash bytes. */
  static byte[] providerKey(String name) throws Exception {
    byte[] d = MessageDigest.getInstance("SHA-256").digest(name.getBytes(StandardCharsets.UTF_8));
    byte[] mh = new byte[34];
    mh[0] = 0x12;
    mh[1] = 32;
    System.arraycopy(d, 0, mh, 2, 32);
    return mh;
  }

  @Test
  void providerRecordsBothWays() throws Exception {
    try (JsPeer js = new JsPeer();
        NettyHost host = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        KadDht dht = new KadDht(host, true, Map.of())) {
      PeerId jsId = PeerId.parse(js.peerId);
      dht.bootstrap(List.of(Multiaddr.parse(js.addr))).get(30, TimeUnit.SECONDS);
      assertTrue(dht.routingTable().contains(jsId), "js serves kad, so it is in the routing table");
      // js must see Java as a DHT server too: it dials us and identify tells it our protocols
      js.call(JsPeer.cmd("dial").put("addr", host.listenAddrs().get(0).withPeer(host.peerId()).toString()), 30);

      assertTrue(dht.provide(providerKey("dsd-java-provides")).get(30, TimeUnit.SECONDS) >= 1, "sent to js");
      JsonNode found = js.call(JsPeer.cmd("findProviders").put("key", "dsd-java-provides")
          .put("want", host.peerId().toBase58()).put("timeoutMs", 15000), 30);
      List<String> providers = new ArrayList<>();
      found.get("providers").forEach(p -> providers.add(p.asText()));
      assertTrue(providers.contains(host.peerId().toBase58()), "js found Java's record: " + providers);

      js.call(JsPeer.cmd("provide").put("key", "dsd-js-provides"), 60);
      List<PeerId> ours = dht.findProviders(providerKey("dsd-js-provides"), 1).get(30, TimeUnit.SECONDS);
      assertTrue(ours.contains(jsId), "Java found js's record: " + ours);
    }
  }
}
