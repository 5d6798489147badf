package dev.dsd.p2p.autonat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.autonat.AutoNatProtocol.DialResponse;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message.ResponseStatus;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.framing.FramedReply;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.kad.KadDht;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** AutoNAT between dsd hosts over loopback: verdicts, what follows from them, and the server's rules. */
class AutoNatTest {
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

  NettyHost host(HostConfig c) {
    return keep(new NettyHost(Identity.generate(), c).start());
  }

  /** A host that serves AutoNAT and the DHT, as a public bootstrap node does. */
  NettyHost server() {
    NettyHost h = host(HostConfig.loopback());
    keep(new AutoNatService(h, true, AutoNatService.DEFAULT_MIN_AGREEING));
    keep(new KadDht(h, true, Map.of()));
    return h;
  }

  static int deadPort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort(); // closed on return: nothing listens there
    }
  }

  @Test
  void aDialableNodeLearnsItIsPublicFromTwoServers() throws Exception {
    NettyHost s1 = server();
    NettyHost s2 = server();
    NettyHost me = host(HostConfig.loopback());
    keep(new AutoNatService(me, false, 2));
    me.connect(s1.listenAddrs().get(0).withPeer(s1.peerId())).get(10, TimeUnit.SECONDS);
    awaitTrue(() -> me.reachability().confidence() == 0 || me.reachability().status() != Reachability.Status.PRIVATE,
        "never private");
    me.connect(s2.listenAddrs().get(0).withPeer(s2.peerId())).get(10, TimeUnit.SECONDS);
    awaitTrue(() -> me.reachability().equals(new Reachability(Reachability.Status.PUBLIC, 2)),
        () -> "public with 2 servers, got " + me.reachability());
    assertEquals(me.listenAddrs(), me.advertisedAddrs(), "nothing held back");
  }

  /**
   * Our addresses change after the verdict (identify confirmed an observed address): the answers are
   * forgotten, and every connected server must be asked again, not only the next one asked (else the
   * verdict rests on one server until the next recheck, minutes later).
   */
  @Test
  void aChangeOfAddressesAsksEveryConnectedServerAgain() throws Exception {
    NettyHost s1 = server();
    NettyHost s2 = server();
    NettyHost me = host(HostConfig.loopback());
    AutoNatService svc = keep(new AutoNatService(me, false, 2));
    me.connect(s1.listenAddrs().get(0).withPeer(s1.peerId())).get(10, TimeUnit.SECONDS);
    me.connect(s2.listenAddrs().get(0).withPeer(s2.peerId())).get(10, TimeUnit.SECONDS);
    awaitTrue(() -> me.reachability().equals(new Reachability(Reachability.Status.PUBLIC, 2)),
        () -> "public with 2 servers, got " + me.reachability());
    me.addrs().setObserved(java.util.Set.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/" + deadPort())));
    assertEquals(ResponseStatus.OK, svc.ask(s2.peerId()).get(20, TimeUnit.SECONDS).status());
    awaitTrue(() -> me.reachability().equals(new Reachability(Reachability.Status.PUBLIC, 2)),
        () -> "public with 2 servers again (s1 asked about the new addresses too), got " + me.reachability());
  }

  @Test
  void anUndialableNodeBecomesPrivateRunsTheDhtAsClientAndStopsAdvertisingTheAddress() throws Exception {
    NettyHost s1 = server();
    NettyHost s2 = server();
    // It listens, but tells the world a port nobody answers on: as a node behind NAT does.
    Multiaddr dead = Multiaddr.parse("/ip4/127.0.0.1/tcp/" + deadPort());
    NettyHost me = host(new HostConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(dead), 64,
        Duration.ofSeconds(3), Duration.ofSeconds(5), "test"));
    KadDht dht = keep(new KadDht(me, true, Map.of()));
    keep(new AutoNatService(me, true, 2));
    assertTrue(dht.isServing());
    List<String> seenAtS1 = new ArrayList<>();
    s1.onIdentify(i -> {
      if (i.peer().equals(me.peerId())) {
        synchronized (seenAtS1) {
          seenAtS1.clear();
          seenAtS1.addAll(i.protocols());
        }
      }
    });
    me.connect(s1.listenAddrs().get(0).withPeer(s1.peerId())).get(10, TimeUnit.SECONDS);
    me.connect(s2.listenAddrs().get(0).withPeer(s2.peerId())).get(10, TimeUnit.SECONDS);
    awaitTrue(() -> me.reachability().equals(new Reachability(Reachability.Status.PRIVATE, 2)),
        () -> "private with 2 servers, got " + me.reachability());
    assertFalse(dht.isServing(), "client mode");
    assertFalse(me.protocols().contains(KadDht.PROTOCOL));
    assertEquals(List.of(), me.advertisedAddrs(), "the undialable address is not advertised");
    awaitTrue(() -> {
      synchronized (seenAtS1) {
        return !seenAtS1.isEmpty() && !seenAtS1.contains(KadDht.PROTOCOL);
      }
    }, () -> "s1 heard by identify push that kad is gone: " + seenAtS1);
    assertFalse(s1.peerStore().protocols(me.peerId()).contains(KadDht.PROTOCOL));
  }

  @Test
  void theServerDialsOnlyTheRequestersIpAndOnlyForItself() throws Exception {
    NettyHost s = server();
    NettyHost me = host(HostConfig.loopback());
    me.connect(s.listenAddrs().get(0).withPeer(s.peerId())).get(10, TimeUnit.SECONDS);
    int port = me.listenAddrs().get(0).toInetSocketAddress().getPort();
    // 127.0.0.2 is this machine too, but not the IP the request comes from
    DialResponse other = ask(me, s, AutoNatProtocol.dial(me.peerId(),
        List.of(Multiaddr.parse("/ip4/127.0.0.2/tcp/" + port))));
    assertEquals(ResponseStatus.E_DIAL_REFUSED, other.status(), other.text());
    DialResponse notMe = ask(me, s, AutoNatProtocol.dial(Identity.generate().peerId(), me.listenAddrs()));
    assertEquals(ResponseStatus.E_BAD_REQUEST, notMe.status(), notMe.text());
    DialResponse ok = ask(me, s, AutoNatProtocol.dial(me.peerId(), me.listenAddrs()));
    assertEquals(ResponseStatus.OK, ok.status(), ok.text());
    assertEquals(me.listenAddrs().get(0), ok.addr());
  }

  @Test
  void dialBacksAreRateLimitedPerPeer() throws Exception {
    NettyHost s = server();
    NettyHost me = host(HostConfig.loopback());
    me.connect(s.listenAddrs().get(0).withPeer(s.peerId())).get(10, TimeUnit.SECONDS);
    Message req = AutoNatProtocol.dial(me.peerId(), me.listenAddrs());
    int ok = 0;
    for (int i = 0; i < AutoNatServer.PER_PEER_PER_MINUTE + 2; i++) {
      DialResponse r = ask(me, s, req);
      if (r.status() == ResponseStatus.OK) {
        ok++;
      } else {
        assertEquals(ResponseStatus.E_DIAL_REFUSED, r.status());
        assertTrue(r.text().contains("rate limited"), r.text());
      }
    }
    // the identify-triggered ask of an AutoNatService is not running here: all dial-backs are ours
    assertEquals(AutoNatServer.PER_PEER_PER_MINUTE, ok);
  }

  @Test
  void rateLimitWindowsAndInFlight() {
    AutoNatRateLimit l = new AutoNatRateLimit(2, 3, 10, 1000);
    PeerId a = Identity.generate().peerId();
    PeerId b = Identity.generate().peerId();
    assertEquals(null, l.tryAcquire(a, 0));
    assertEquals(null, l.tryAcquire(a, 1));
    assertTrue(l.tryAcquire(a, 2).contains("for this peer"));
    assertEquals(null, l.tryAcquire(b, 3));
    assertTrue(l.tryAcquire(b, 4).contains("limit 3"), "global");
    assertEquals(null, l.tryAcquire(a, 1001), "the window moved on");
    AutoNatRateLimit busy = new AutoNatRateLimit(10, 10, 1, 1000);
    assertEquals(null, busy.tryAcquire(a, 0));
    assertTrue(busy.tryAcquire(b, 0).contains("running"));
    busy.release();
    assertEquals(null, busy.tryAcquire(b, 0));
  }

  @Test
  void verdictNeedsAgreementAndResistsOneDissenter() {
    AutoNatVerdict v = new AutoNatVerdict(2, 60_000);
    List<Multiaddr> a = List.of(Multiaddr.parse("/ip4/198.51.100.1/tcp/4001"));
    v.add(Identity.generate().peerId(), true, a, 0);
    assertEquals(Reachability.UNKNOWN, v.reachability(0), "one server is not enough");
    v.add(Identity.generate().peerId(), true, a, 0);
    assertEquals(new Reachability(Reachability.Status.PUBLIC, 2), v.reachability(0));
    v.add(Identity.generate().peerId(), false, a, 0);
    assertEquals(Reachability.Status.PUBLIC, v.reachability(0).status(), "2 against 1");
    v.add(Identity.generate().peerId(), false, a, 0);
    assertEquals(Reachability.Status.PUBLIC, v.reachability(0).status(), "a tie keeps the verdict");
    v.add(Identity.generate().peerId(), false, a, 0);
    assertEquals(new Reachability(Reachability.Status.PRIVATE, 3), v.reachability(0));
    assertEquals(Reachability.UNKNOWN, v.reachability(60_001), "answers expire");
  }

  static DialResponse ask(NettyHost from, NettyHost server, Message request) throws Exception {
    CompletableFuture<DialResponse> answer = new CompletableFuture<>();
    from.newStream(server.peerId(), List.of(AutoNatProtocol.ID), st -> {
      FramedReply.read(st.channel(), AutoNatProtocol.MAX_MESSAGE, AutoNatProtocol::parseResponse, "closed early")
          .whenComplete((r, e) -> {
            if (e != null) {
              answer.completeExceptionally(e);
            } else {
              answer.complete(r);
            }
          });
      st.channel().writeAndFlush(AutoNatProtocol.frame(request));
    }).get(10, TimeUnit.SECONDS);
    return answer.get(20, TimeUnit.SECONDS);
  }

  static void awaitTrue(BooleanSupplier cond, String message) throws InterruptedException {
    awaitTrue(cond, () -> message);
  }

  static void awaitTrue(BooleanSupplier cond, java.util.function.Supplier<String> message) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(message.get());
      }
      Thread.sleep(20);
    }
  }
}
