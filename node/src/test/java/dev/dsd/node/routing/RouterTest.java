package dev.dsd.node.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RouterTest {
  static PeerId peer() {
    return PeerId.fromPublicKey(Identity.generate().publicKeyProto());
  }

  final Map<PeerId, Double> fromEntry = new HashMap<>();
  final Router router = new Router(p -> fromEntry.getOrDefault(p, Double.NaN), (a, b) -> Double.NaN);

  Candidate c(PeerId p, int from, int to, int micros, double rttMicros) {
    fromEntry.put(p, rttMicros);
    return new Candidate(p, List.of(), from, to, micros, 0, 8);
  }

  @Test
  void prefersTheFasterChainCountingLinksAndCompute() {
    PeerId a = peer(), b = peer(), c = peer(), whole = peer();
    List<Candidate> all = List.of(c(a, 0, 2, 1000, 2000), c(b, 2, 4, 1000, 2000), c(c, 2, 4, 1000, 40_000),
        c(whole, 0, 4, 30_000, 1000));
    Route r = router.route("m", 4, all, Set.of());
    assertEquals(List.of(a, b), r.stages().stream().map(Route.Stage::peer).toList());
    // entry→a 1000 + a 1000 + a→b (2000+2000)/2 + b 1000 + b→entry 1000
    assertEquals(6.0, r.expectedRoundMillis(), 1e-9);
  }

  @Test
  void avoidsFailedAndFullPeersAndNamesTheGap() {
    PeerId a = peer(), b = peer(), b2 = peer();
    Candidate full = new Candidate(b2, List.of(), 2, 4, 10, 8, 8);
    List<Candidate> all = List.of(c(a, 0, 2, 1000, 2000), c(b, 2, 4, 1000, 2000), full);
    assertEquals(b, router.route("m", 4, all, Set.of()).stages().get(1).peer());
    NoRouteException e = assertThrows(NoRouteException.class, () -> router.route("model", 4, all, Set.of(b)));
    assertTrue(e.getMessage().contains("nothing serves layer 2 onwards"), e.getMessage());
  }

  @Test
  void aLoadedStageCostsMore() {
    PeerId a = peer(), b = peer(), busy = peer();
    fromEntry.put(busy, 2000.0);
    Candidate loaded = new Candidate(busy, List.of(), 2, 4, 1000, 7, 8);
    List<Candidate> all = List.of(c(a, 0, 2, 1000, 2000), c(b, 2, 4, 1500, 2000), loaded);
    assertEquals(b, router.route("m", 4, all, Set.of()).stages().get(1).peer());
  }
}
