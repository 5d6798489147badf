package dev.dsd.p2p.relay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.EchoProtocol;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.identify.IdentifyProtocol;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Three hosts on loopback: A reserves on relay R, B reaches A only through R's circuit. */
class RelayTest {
  static NettyHost host() {
    NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
    h.setStreamHandler(EchoProtocol.ID, EchoProtocol::serve);
    RelayClient.install(h);
    return h;
  }

  static Multiaddr addr(NettyHost h) {
    return h.listenAddrs().get(0).withPeer(h.peerId());
  }

  @Test
  void reservedPeerIsReachableThroughTheRelayAndCarriesStreams() throws Exception {
    try (NettyHost r = host(); NettyHost a = host(); NettyHost b = host()) {
      RelayService service = RelayService.start(r, RelayLimits.defaults());
      try (AutoRelay auto = new AutoRelay(a, RelayClient.install(a))) {
        CompletableFuture<List<Multiaddr>> changed = new CompletableFuture<>();
        auto.onAddressesChanged(() -> changed.complete(auto.circuitAddrs()));
        auto.setReachability(Reachability.Status.PRIVATE);
        a.connect(addr(r)).get(10, TimeUnit.SECONDS);
        List<Multiaddr> circuits = changed.get(10, TimeUnit.SECONDS);
        Multiaddr expected = Multiaddr.circuit(addr(r));
        assertEquals(List.of(expected), circuits);
        assertTrue(a.advertisedAddrs().contains(expected), a.advertisedAddrs().toString());
        RelayClient.Reservation res = auto.reservations().get(r.peerId());
        assertEquals(a.peerId(), res.voucher().peer());
        assertEquals(r.peerId(), res.voucher().relay());
        assertEquals(1, service.reservationCount());

        // B knows A only by its relay address
        Multiaddr viaRelay = expected.withPeer(a.peerId());
        assertEquals(a.peerId(), viaRelay.peerId());
        Connection c = b.connect(viaRelay).get(10, TimeUnit.SECONDS);
        assertTrue(c.relayed());
        assertEquals(a.peerId(), c.remotePeer());
        assertTrue(b.ping(a.peerId()).get(10, TimeUnit.SECONDS) > 0);
        IdentifyProtocol.Info info = b.identify(a.peerId()).get(10, TimeUnit.SECONDS);
        assertTrue(info.listenAddrs().contains(expected), info.listenAddrs().toString());
        assertEquals(null, info.observedAddr(), "no observed address over a relay");
        Stream ab = b.newStream(a.peerId(), List.of(EchoProtocol.ID), s -> { }).get(10, TimeUnit.SECONDS);
        assertTrue(EchoProtocol.roundTrip(ab, 1 << 20, 7).get(30, TimeUnit.SECONDS), "1 MiB through the relay");
        // and A opens a stream back over the same relayed connection
        Stream ba = a.newStream(b.peerId(), List.of(EchoProtocol.ID), s -> { }).get(10, TimeUnit.SECONDS);
        assertTrue(EchoProtocol.roundTrip(ba, 300_000, 8).get(30, TimeUnit.SECONDS));
        assertTrue(service.relayedBytes() > 2 * (1 << 20), "relayed " + service.relayedBytes());
        assertEquals(1, service.circuitCount());
      }
    }
  }

  @Test
  void relayRefusesUnreservedTargetsAndEnforcesTheDataLimit() throws Exception {
    try (NettyHost r = host(); NettyHost a = host(); NettyHost b = host()) {
      RelayService service = RelayService.start(r, RelayLimits.defaults().withCircuit(Duration.ofMinutes(1), 64 * 1024));
      a.connect(addr(r)).get(10, TimeUnit.SECONDS);
      Multiaddr viaRelay = Multiaddr.circuit(addr(r)).withPeer(a.peerId());
      ExecutionException e = assertThrows(ExecutionException.class, () -> b.connect(viaRelay).get(10, TimeUnit.SECONDS));
      assertTrue(e.getCause().getMessage().contains("NO_RESERVATION"), e.getCause().getMessage());

      RelayClient.Reservation res = RelayClient.install(a).reserve(r.peerId()).get(10, TimeUnit.SECONDS);
      assertEquals(64 * 1024, res.limitBytes());
      b.connect(viaRelay).get(10, TimeUnit.SECONDS);
      Stream s = b.newStream(a.peerId(), List.of(EchoProtocol.ID), x -> { }).get(10, TimeUnit.SECONDS);
      assertFalse(EchoProtocol.roundTrip(s, 1 << 20, 3).get(30, TimeUnit.SECONDS), "1 MiB cannot pass a 64 KiB circuit");
      waitFor(() -> service.circuitCount() == 0 && !b.isConnected(a.peerId()), "circuit closed");
    }
  }

  @Test
  void slotsAreLimited() throws Exception {
    try (NettyHost r = host(); NettyHost a = host(); NettyHost b = host()) {
      RelayService.start(r, RelayLimits.defaults().withMaxReservations(1));
      a.connect(addr(r)).get(10, TimeUnit.SECONDS);
      b.connect(addr(r)).get(10, TimeUnit.SECONDS);
      RelayClient.install(a).reserve(r.peerId()).get(10, TimeUnit.SECONDS);
      RelayClient.install(a).reserve(r.peerId()).get(10, TimeUnit.SECONDS); // a renewal takes no new slot
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> RelayClient.install(b).reserve(r.peerId()).get(10, TimeUnit.SECONDS));
      assertTrue(e.getCause().getMessage().contains("RESERVATION_REFUSED"), e.getCause().getMessage());
    }
  }

  @Test
  void voucherSignatureIsChecked() {
    Identity relay = Identity.generate();
    PeerId peer = Identity.generate().peerId();
    byte[] sealed = new RelayVoucher(relay.peerId(), peer, 1234).seal(relay);
    assertEquals(new RelayVoucher(relay.peerId(), peer, 1234), RelayVoucher.open(sealed));
    byte[] forged = new RelayVoucher(relay.peerId(), peer, 1234).seal(Identity.generate());
    assertThrows(RuntimeException.class, () -> RelayVoucher.open(forged));
    sealed[sealed.length - 1] ^= 1;
    assertThrows(RuntimeException.class, () -> RelayVoucher.open(sealed));
  }

  static void waitFor(java.util.function.BooleanSupplier cond, String what) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(20);
    }
  }
}
