package dev.dsd.p2p.kad;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.proto.KadProto.Message;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class KadDhtTest {

  @Test
  void routingTableKeepsLiveOldPeersAndOrdersByDistance() {
    PeerId self = Identity.generate().peerId();
    RoutingTable t = new RoutingTable(self);
    List<PeerId> peers = new ArrayList<>();
    for (int i = 0; i < 300; i++) {
      PeerId p = Identity.generate().peerId();
      peers.add(p);
      t.add(p, x -> true); // everyone alive: full buckets refuse newcomers
    }
    assertTrue(t.size() < 300, "full buckets refused some peers");
    // bucket 0 holds half of all random peers, so it filled at K
    assertTrue(t.size() >= RoutingTable.K);
    KadKey target = KadKey.of("x".getBytes());
    List<PeerId> c = t.closest(target, 5);
    for (int i = 1; i < c.size(); i++) {
      assertTrue(target.compareDistance(KadKey.of(c.get(i - 1).toBytes()), KadKey.of(c.get(i).toBytes())) <= 0);
    }
    // a dead oldest peer is replaced
    RoutingTable u = new RoutingTable(self);
    int added = 0;
    for (PeerId p : peers) {
      if (u.add(p, x -> false)) {
        added++;
      }
    }
    assertEquals(300, added, "with no live peers every newcomer gets in");
    assertFalse(u.add(self, x -> true), "self is never added");
  }

  @Test
  void publicKeyRecordsAreValidated() {
    Identity id = Identity.generate();
    byte[] key = dev.dsd.p2p.core.Bytes.concat("/pk/".getBytes(StandardCharsets.ISO_8859_1), id.peerId().toBytes());
    KadStores s = new KadStores(Map.of("pk", RecordValidator.PUBLIC_KEY));
    s.putRecord(key, id.publicKeyProto());
    assertArrayEquals(id.publicKeyProto(), s.record(key).value());
    assertThrows(ProtocolViolationException.class, () -> s.putRecord(key, Identity.generate().publicKeyProto()));
    assertThrows(ProtocolViolationException.class, () -> s.putRecord("/nope/x".getBytes(), new byte[1]));
  }

  @Test
  void twentyNodesOnLoopbackAllFindEachOther() throws Exception {
    List<NettyHost> hosts = new ArrayList<>();
    List<KadDht> dhts = new ArrayList<>();
    try {
      for (int i = 0; i < 20; i++) {
        NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        hosts.add(h);
        dhts.add(new KadDht(h, true, Map.of()));
      }
      Multiaddr boot = hosts.get(0).listenAddrs().get(0).withPeer(hosts.get(0).peerId());
      for (int i = 1; i < 20; i++) {
        dhts.get(i).bootstrap(List.of(boot)).get(30, TimeUnit.SECONDS);
      }
      // a second round lets early joiners learn of later ones, as the periodic refresh would
      for (int i = 1; i < 20; i++) {
        dhts.get(i).bootstrap(List.of()).get(30, TimeUnit.SECONDS);
      }
      List<CompletableFuture<Boolean>> checks = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        for (int j = 0; j < 20; j++) {
          if (i != j) {
            Multiaddr want = hosts.get(j).listenAddrs().get(0);
            checks.add(dhts.get(i).findPeer(hosts.get(j).peerId()).thenApply(a -> a.contains(want)));
          }
        }
      }
      int found = 0;
      for (CompletableFuture<Boolean> c : checks) {
        if (c.get(60, TimeUnit.SECONDS)) {
          found++;
        }
      }
      assertEquals(380, found, "every node finds every other");
      // providers and values travel too
      byte[] key = "dsd/test/provider".getBytes();
      dhts.get(7).provide(key).get(30, TimeUnit.SECONDS);
      assertEquals(List.of(hosts.get(7).peerId()), dhts.get(13).findProviders(key, 1).get(30, TimeUnit.SECONDS));
      Identity someone = Identity.generate();
      byte[] pk = dev.dsd.p2p.core.Bytes.concat("/pk/".getBytes(StandardCharsets.ISO_8859_1), someone.peerId().toBytes());
      assertTrue(dhts.get(3).putValue(pk, someone.publicKeyProto()).get(30, TimeUnit.SECONDS) > 0);
      assertArrayEquals(someone.publicKeyProto(), dhts.get(17).getValue(pk).get(30, TimeUnit.SECONDS));
    } finally {
      dhts.forEach(KadDht::close);
      hosts.forEach(NettyHost::close);
    }
  }

  @Test
  void fuzzRequestHandling() {
    NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback());
    try (KadDht dht = new KadDht(h, true, Map.of())) {
      PeerId from = Identity.generate().peerId();
      byte[] valid = Message.newBuilder().setType(Message.MessageType.ADD_PROVIDER).setKey(ByteString.copyFromUtf8("k"))
          .addProviderPeers(Message.Peer.newBuilder().setId(ByteString.copyFrom(from.toBytes()))
              .addAddrs(ByteString.copyFrom(Multiaddr.parse("/ip4/1.2.3.4/tcp/5").toBytes()))).build().toByteArray();
      SplittableRandom r = new SplittableRandom(4);
      int handled = 0;
      for (int i = 0; i < 20_000; i++) {
        byte[] in = i % 2 == 0 ? new byte[r.nextInt(0, 100)] : valid.clone();
        if (i % 2 == 0) {
          r.nextBytes(in);
        } else {
          for (int m = r.nextInt(1, 4); m > 0; m--) {
            in[r.nextInt(in.length)] = (byte) r.nextInt(256);
          }
        }
        try {
          dht.handle(from, Message.parseFrom(in));
          handled++;
        } catch (InvalidProtocolBufferException | ProtocolViolationException expected) {
          // refused with a reason; the server closes that stream
        }
      }
      assertTrue(handled > 0);
    } finally {
      h.close();
    }
  }

}
