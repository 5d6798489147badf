package dev.dsd.p2p.relay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.autonat.AutoNatService;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** AutoNAT's verdict drives AutoRelay: found unreachable, a node reserves relay slots; found reachable, it drops them. */
class AutoRelayReachabilityTest {
  final List<AutoCloseable> open = new ArrayList<>();

  <T extends AutoCloseable> T keep(T c) {
    open.add(0, c);
    return c;
  }

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : open) {
      c.close();
    }
  }

  /** A public node: serves AutoNAT and circuit relay. */
  NettyHost relayServer() {
    NettyHost h = keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
    keep(new AutoNatService(h, true, AutoNatService.DEFAULT_MIN_AGREEING));
    RelayService.start(h, RelayLimits.defaults());
    return h;
  }

  @Test
  void anUndialableNodeReservesRelaySlotsOnceAutoNatSaysPrivateAndDropsThemWhenPublic() throws Exception {
    NettyHost s1 = relayServer();
    NettyHost s2 = relayServer();
    // listens, but tells the world a port nobody answers on, as a node behind NAT does
    int dead;
    try (ServerSocket s = new ServerSocket(0)) {
      dead = s.getLocalPort();
    }
    NettyHost me = keep(new NettyHost(Identity.generate(), new HostConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")),
        List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/" + dead)), 64, Duration.ofSeconds(3), Duration.ofSeconds(5),
        "test")).start());
    keep(new AutoNatService(me, false, 2));
    AutoRelay auto = keep(new AutoRelay(me, RelayClient.install(me))).followReachability();
    assertEquals(Reachability.Status.UNKNOWN, auto.reachability());

    me.connect(s1.listenAddrs().get(0).withPeer(s1.peerId())).get(10, TimeUnit.SECONDS);
    me.connect(s2.listenAddrs().get(0).withPeer(s2.peerId())).get(10, TimeUnit.SECONDS);
    awaitTrue(() -> me.reachability().status() == Reachability.Status.PRIVATE, "AutoNAT: private");
    awaitTrue(() -> auto.reachability() == Reachability.Status.PRIVATE, "AutoRelay follows");
    awaitTrue(() -> auto.reservations().size() == 2, "reservations on both relays");
    assertTrue(me.advertisedAddrs().stream().anyMatch(Multiaddr::isCircuit), me.advertisedAddrs().toString());

    // a later verdict of PUBLIC (as AutoNAT sets it) drops them
    me.setReachability(new Reachability(Reachability.Status.PUBLIC, 2));
    awaitTrue(() -> auto.reservations().isEmpty(), "reservations dropped when public");
    assertTrue(me.advertisedAddrs().stream().noneMatch(Multiaddr::isCircuit), me.advertisedAddrs().toString());
  }

  @Test
  void aDialableNodeMakesNoReservation() throws Exception {
    NettyHost s1 = relayServer();
    NettyHost s2 = relayServer();
    NettyHost me = keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
    keep(new AutoNatService(me, false, 2));
    AutoRelay auto = keep(new AutoRelay(me, RelayClient.install(me))).followReachability();
    me.connect(s1.listenAddrs().get(0).withPeer(s1.peerId())).get(10, TimeUnit.SECONDS);
    me.connect(s2.listenAddrs().get(0).withPeer(s2.peerId())).get(10, TimeUnit.SECONDS);
    awaitTrue(() -> auto.reachability() == Reachability.Status.PUBLIC, "AutoNAT public, AutoRelay follows");
    Thread.sleep(500); // a reservation, if one were made, would be under way by now
    assertTrue(auto.reservations().isEmpty(), auto.reservations().toString());
  }

  /**
   * A peer observing us at an IP no interface of ours has (what identify reports behind NAT; on
   * loopback only the observation can be fed in) makes the node reserve before AutoNAT has decided;
   * PUBLIC releases the slot. An observation at one of our own IPs does nothing.
   */
  @Test
  void aNodeSeenBehindNatReservesBeforeAutoNatDecides() throws Exception {
    NettyHost relay = relayServer();
    NettyHost me = keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
    AutoRelay auto = keep(new AutoRelay(me, RelayClient.install(me))).followReachability();
    me.connect(relay.listenAddrs().get(0).withPeer(relay.peerId())).get(10, TimeUnit.SECONDS);
    auto.onObserved(me.listenAddrs().get(0));
    auto.onObserved(Multiaddr.parse("/ip4/127.0.0.9/tcp/4001"));
    Thread.sleep(300);
    assertTrue(!auto.natSeen() && auto.reservations().isEmpty(), "our own or loopback IPs prove no NAT");

    auto.onObserved(Multiaddr.parse("/ip4/203.0.113.11/tcp/4001"));
    assertTrue(auto.natSeen());
    awaitTrue(() -> auto.reservations().size() == 1, "a reservation while AutoNAT has no verdict");
    assertEquals(Reachability.Status.UNKNOWN, me.reachability().status());
    assertTrue(me.advertisedAddrs().stream().anyMatch(Multiaddr::isCircuit), me.advertisedAddrs().toString());

    me.setReachability(new Reachability(Reachability.Status.PUBLIC, 2));
    awaitTrue(() -> auto.reservations().isEmpty(), "released when AutoNAT finds us public");
  }

  static void awaitTrue(BooleanSupplier cond, String message) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(message);
      }
      Thread.sleep(20);
    }
  }
}
