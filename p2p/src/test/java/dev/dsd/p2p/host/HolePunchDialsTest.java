package dev.dsd.p2p.host;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

/** Which inbound connection is a hole punch's: by the exact address dialed, else by the same IP. */
class HolePunchDialsTest {
  static final PeerId PEER = Identity.generate().peerId();

  @Test
  void theExactAddressDialedClaimsItsPunch() {
    HolePunchDials d = new HolePunchDials();
    HolePunchDials.Pending p = d.start(new InetSocketAddress("203.0.113.11", 4001), PEER, true);
    HolePunchDials.Pending stale = d.start(new InetSocketAddress("203.0.113.11", 41540), PEER, true);
    assertSame(p, d.claim(new InetSocketAddress("203.0.113.11", 4001)));
    assertTrue(p.claimed);
    assertEquals(1, d.size(), "the other punch is still pending");
    assertSame(stale, d.claim(new InetSocketAddress("203.0.113.11", 4001)), "then one to the same IP");
    assertNull(d.claim(new InetSocketAddress("203.0.113.11", 4001)), "a claim is taken once");
  }

  @Test
  void aSynFromAnotherPortOfTheSameIpIsStillThePunch() {
    // the peer named a port observed on an older connection; its punch comes from its listen port's mapping
    HolePunchDials d = new HolePunchDials();
    HolePunchDials.Pending p = d.start(new InetSocketAddress("203.0.113.11", 41540), PEER, false);
    assertSame(p, d.claim(new InetSocketAddress("203.0.113.11", 4001)));
    assertTrue(p.claimed);
    assertEquals(0, d.size());
  }

  @Test
  void anotherIpIsNotThePunch() {
    HolePunchDials d = new HolePunchDials();
    d.start(new InetSocketAddress("203.0.113.11", 4001), PEER, true);
    assertNull(d.claim(new InetSocketAddress("203.0.113.12", 4001)));
    assertEquals(1, d.size());
  }
}
