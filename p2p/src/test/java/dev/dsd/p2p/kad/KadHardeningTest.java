package dev.dsd.p2p.kad;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.proto.KadProto.Message;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Provider-record caps and routing-table hygiene: what one peer, or many cheap ones, cannot do. */
class KadHardeningTest {
  static byte[] key(int i) {
    return ("key-" + i).getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void onePeerAnnouncingTenThousandKeysEvictsNothing() {
    KadStores s = new KadStores(Map.of());
    List<PeerId> honest = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      PeerId p = Identity.generate().peerId();
      honest.add(p);
      assertNull(s.addRemoteProvider(key(i), p, "198.51.100.0/24"));
    }
    PeerId flooder = Identity.generate().peerId();
    int stored = 0;
    for (int i = 0; i < 10_000; i++) {
      if (s.addRemoteProvider(key(100_000 + i), flooder, "203.0.113.0/24") == null) {
        stored++;
      }
    }
    assertEquals(KadStores.MAX_KEYS_PER_PROVIDER, stored);
    assertEquals(KadStores.MAX_KEYS_PER_PROVIDER, s.keysOf(flooder));
    for (int i = 0; i < 50; i++) {
      assertEquals(List.of(honest.get(i)), s.providers(key(i)), "honest record " + i + " kept");
    }
  }

  @Test
  void cheapIdentitiesFromOneNetworkCannotCrowdAKey() {
    KadStores s = new KadStores(Map.of());
    PeerId honest = Identity.generate().peerId();
    assertNull(s.addRemoteProvider(key(1), honest, "198.51.100.0/24"));
    int stored = 0;
    for (int i = 0; i < 100; i++) {
      if (s.addRemoteProvider(key(1), Identity.generate().peerId(), "203.0.113.0/24") == null) {
        stored++;
      }
    }
    assertEquals(KadStores.MAX_PROVIDERS_PER_NETWORK, stored);
    assertTrue(s.providers(key(1)).contains(honest));
  }

  @Test
  void aFullKeyKeepsItsOlderProviders() {
    KadStores s = new KadStores(Map.of());
    List<PeerId> first = new ArrayList<>();
    for (int i = 0; i < KadStores.MAX_PROVIDERS_PER_KEY; i++) {
      PeerId p = Identity.generate().peerId();
      first.add(p);
      assertNull(s.addRemoteProvider(key(7), p, "198.51." + i + "/24")); // each from its own network
    }
    String refused = s.addRemoteProvider(key(7), Identity.generate().peerId(), null);
    assertTrue(refused != null && refused.contains("limit"), refused);
    assertEquals(first, s.providers(key(7)), "nobody was pushed out");
    assertNull(s.addRemoteProvider(key(7), first.get(3), null), "a holder refreshes its own record");
  }

  @Test
  void networksAreSlash24AndOnlyForPublicAddresses() throws Exception {
    assertEquals("203.0.113/24", KadStores.network(InetAddress.getByName("203.0.113.77")));
    assertNull(KadStores.network(InetAddress.getByName("127.0.0.1")));
    assertNull(KadStores.network(InetAddress.getByName("192.168.3.4")));
    assertNull(KadStores.network(null));
  }

  @Test
  void answersHandNoPrivateAddressesToAPeerOutsideThoseNetworks() throws Exception {
    try (NettyHost a = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        KadDht da = new KadDht(a, true, Map.of());
        NettyHost local = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      PeerId b = Identity.generate().peerId();
      Multiaddr lan = Multiaddr.parse("/ip4/192.168.7.7/tcp/4001");
      Multiaddr wan = Multiaddr.parse("/ip4/198.51.100.7/tcp/4001");
      a.peerStore().addAddrs(b, List.of(lan, wan));
      da.routingTable().add(b, x -> true);
      Message req = Message.newBuilder().setType(Message.MessageType.FIND_NODE)
          .setKey(com.google.protobuf.ByteString.copyFrom(b.toBytes())).build();
      // a requester we have no direct connection to counts as on the internet
      assertEquals(List.of(wan), addrsOf(da.handle(Identity.generate().peerId(), req), b));
      local.connect(a.listenAddrs().get(0).withPeer(a.peerId())).get(10, TimeUnit.SECONDS);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (!a.isConnected(local.peerId()) && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertEquals(List.of(lan, wan), addrsOf(da.handle(local.peerId(), req), b), "a loopback peer may see all");
    }
  }

  static List<Multiaddr> addrsOf(Message resp, PeerId p) {
    List<Multiaddr> out = new ArrayList<>();
    for (Message.Peer e : resp.getCloserPeersList()) {
      if (PeerId.fromBytes(e.getId().toByteArray()).equals(p)) {
        e.getAddrsList().forEach(x -> out.add(Multiaddr.fromBytes(x.toByteArray())));
      }
    }
    return out;
  }

  @Test
  void anUnresponsivePeerLeavesTheRoutingTable() throws Exception {
    try (NettyHost a = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        KadDht da = new KadDht(a, true, Map.of())) {
      NettyHost b = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
      KadDht db = new KadDht(b, true, Map.of());
      Multiaddr bAddr = b.listenAddrs().get(0).withPeer(b.peerId());
      da.bootstrap(List.of(bAddr)).get(10, TimeUnit.SECONDS);
      assertTrue(da.routingTable().contains(b.peerId()));
      db.close();
      b.close();
      da.closestPeers(key(1)).get(20, TimeUnit.SECONDS);
      assertFalse(da.routingTable().contains(b.peerId()), "b did not answer: it left the table");
    }
  }
}
