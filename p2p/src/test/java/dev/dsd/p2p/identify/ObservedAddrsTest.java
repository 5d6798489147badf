package dev.dsd.p2p.identify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.multiaddr.Multiaddr;
import java.net.InetAddress;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ObservedAddrsTest {
  static final List<Multiaddr> LISTEN = List.of(Multiaddr.parse("/ip4/192.168.1.5/tcp/4001"),
      Multiaddr.parse("/ip6/::1/tcp/4002"));
  static final Multiaddr SEEN = Multiaddr.parse("/ip4/198.51.100.1/tcp/53211"); // NAT's port for one dial
  static final Multiaddr PUBLIC = Multiaddr.parse("/ip4/198.51.100.1/tcp/4001"); // with our listen port

  static InetAddress ip(String s) throws Exception {
    return InetAddress.getByName(s);
  }

  @Test
  void confirmedOnlyByObserversAtTwoDistinctIps() throws Exception {
    ObservedAddrs o = new ObservedAddrs();
    assertEquals(Set.of(), o.record(ip("203.0.113.1"), SEEN, LISTEN, 0));
    assertEquals(Set.of(), o.record(ip("203.0.113.1"), SEEN, LISTEN, 1), "the same observer twice is one");
    assertEquals(Set.of(PUBLIC), o.record(ip("203.0.113.2"), Multiaddr.parse("/ip4/198.51.100.1/tcp/60000"),
        LISTEN, 2), "a second IP confirms it, whatever port the NAT gave each dial");
    assertEquals(Set.of(), o.confirmed(ObservedAddrs.TTL.toMillis() + 10), "and it expires");
  }

  @Test
  void privateAndLoopbackObservationsAndNullAreIgnored() throws Exception {
    ObservedAddrs o = new ObservedAddrs();
    for (String s : List.of("10.0.0.1", "10.0.0.2", "10.0.0.3")) {
      o.record(ip(s), Multiaddr.parse("/ip4/192.168.1.5/tcp/999"), LISTEN, 0);
      o.record(ip(s), Multiaddr.parse("/ip4/127.0.0.1/tcp/999"), LISTEN, 0);
      o.record(ip(s), null, LISTEN, 0);
    }
    assertEquals(Set.of(), o.confirmed(0));
  }

  @Test
  void boundedInCandidates() throws Exception {
    ObservedAddrs o = new ObservedAddrs();
    for (int i = 0; i < 1000; i++) {
      o.record(ip("203.0.113." + (i % 250)), Multiaddr.parse("/ip4/198.51." + (i / 250) + "." + (i % 250) + "/tcp/1"),
          LISTEN, i);
      o.record(ip("203.0.112." + (i % 250)), Multiaddr.parse("/ip4/198.51." + (i / 250) + "." + (i % 250) + "/tcp/1"),
          LISTEN, i);
    }
    assertTrue(o.confirmed(1000).size() <= ObservedAddrs.MAX_CANDIDATES, "a flood of claims stays bounded");
  }
}
