package dev.dsd.node.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.pipeline.model.WeightFormat;
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
    // with b failed, the full peer is the only cover of [2,4): it is asked (it may have freed a slot,
    // and if not its refusal names the session limit) rather than the model being reported unserved
    assertEquals(b2, router.route("m", 4, all, Set.of(b)).stages().get(1).peer());
    NoRouteException e = assertThrows(NoRouteException.class, () -> router.route("model", 4, all, Set.of(b, b2)));
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

  Candidate c(PeerId p, int from, int to, int micros, double rttMicros, WeightFormat weights) {
    fromEntry.put(p, rttMicros);
    return new Candidate(p, List.of(), from, to, micros, 0, 8, weights);
  }

  @Test
  void neverMixesFormatsEvenWhenAMixedChainWouldBeFaster() {
    PeerId a = peer(), b = peer(), fastQ4 = peer();
    // a -> fastQ4 would be the cheapest chain if formats could mix; only a -> b is all one format
    List<Candidate> all = List.of(c(a, 0, 2, 1000, 2000, WeightFormat.F32), c(b, 2, 4, 9000, 2000, WeightFormat.F32),
        c(fastQ4, 2, 4, 100, 1000, WeightFormat.Q4));
    Route r = router.route("m", 4, all, Set.of());
    assertEquals(List.of(a, b), r.stages().stream().map(Route.Stage::peer).toList());
    assertEquals(WeightFormat.F32, r.weights());
    NoRouteException q4 = assertThrows(NoRouteException.class, () -> router.route("m", 4, all, Set.of(), WeightFormat.Q4));
    assertTrue(q4.getMessage().contains("in q4 weights: nothing serves layer 0 onwards"), q4.getMessage());
    NoRouteException gone = assertThrows(NoRouteException.class, () -> router.route("m", 4, all, Set.of(b)));
    assertTrue(gone.getMessage().contains("no chain of peers in one weights format covers layers [0, 4)")
        && gone.getMessage().contains("f32 peers serve nothing from layer 2 onwards")
        && gone.getMessage().contains("q4 peers serve nothing from layer 0 onwards"), gone.getMessage());
  }

  @Test
  void takesTheFormatAskedForElseTheFastestFormat() {
    PeerId f1 = peer(), f2 = peer(), q1 = peer(), q2 = peer();
    List<Candidate> all = List.of(c(f1, 0, 2, 4000, 2000, WeightFormat.F32), c(f2, 2, 4, 4000, 2000, WeightFormat.F32),
        c(q1, 0, 2, 1000, 2000, WeightFormat.Q4), c(q2, 2, 4, 1000, 2000, WeightFormat.Q4));
    Route fastest = router.route("m", 4, all, Set.of());
    assertEquals(WeightFormat.Q4, fastest.weights());
    assertEquals(List.of(q1, q2), fastest.stages().stream().map(Route.Stage::peer).toList());
    Route asked = router.route("m", 4, all, Set.of(), WeightFormat.F32);
    assertEquals(WeightFormat.F32, asked.weights());
    assertEquals(List.of(f1, f2), asked.stages().stream().map(Route.Stage::peer).toList());
    NoRouteException q8 = assertThrows(NoRouteException.class,
        () -> router.route("model-id-long-enough", 4, all, Set.of(), WeightFormat.Q8));
    assertEquals("no peer serves model model-id-lon in q8 weights; the swarm serves it in f32, q4", q8.getMessage());
    // avoiding a q4 stage leaves f32 as the only whole chain
    assertEquals(WeightFormat.F32, router.route("m", 4, all, Set.of(q2)).weights());
  }
}
