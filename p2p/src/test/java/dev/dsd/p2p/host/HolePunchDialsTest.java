package dev.dsd.p2p.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

/** Which inbound connection is a hole punch's: only one from the exact address the punch dials. */
class HolePunchDialsTest {
  static final PeerId PEER = Identity.generate().peerId();

  @Test
  void theExactAddressDialedClaimsItsPunchOnce() {
    HolePunchDials d = new HolePunchDials();
    HolePunchDials.Pending p = d.start(new InetSocketAddress("203.0.113.11", 4001), PEER, true);
    d.start(new InetSocketAddress("203.0.113.11", 41540), PEER, true);
    assertSame(p, d.claim(new InetSocketAddress("::ffff:203.0.113.11", 4001)), "a dual-stack listener's view");
    assertTrue(p.claimed);
    assertEquals(1, d.size(), "the other punch is still pending");
    assertNull(d.claim(new InetSocketAddress("203.0.113.11", 4001)), "a claim is taken once");
  }

  @Test
  void anotherPortOfTheSameIpIsNotThePunch() {
    // say the punching peer's AutoNAT dial-back, or another host behind the same NAT: a plain inbound connection
    HolePunchDials d = new HolePunchDials();
    d.start(new InetSocketAddress("203.0.113.11", 4001), PEER, true);
    assertNull(d.claim(new InetSocketAddress("203.0.113.11", 50123)));
    assertNull(d.claim(new InetSocketAddress("203.0.113.12", 4001)));
    assertEquals(1, d.size());
  }
}
