package dev.dsd.testnet.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class SimulatorTest {

  /**
   * One stage, no drafting, fixed latency: every round is entry → stage → entry, so a request of N
   * tokens takes (2L + a + bP) for the first round (the prompt's P tokens) plus (N-1)(2L + a + b).
   */
  @Test
  void oneStageWithoutDraftsMatchesTheClosedForm() {
    double l = 7.5;
    double a = 2;
    double b = 0.25;
    int p = 20;
    int n = 32;
    SimResult r = new Simulator(SimFixtures.config(1, l, 0, "none", 3), SimFixtures.profile(1, a, b),
        SimFixtures.profile(1, 0, 0), SimFixtures.greedy(1, p, n, 0)).run();
    double perRequestMs = (2 * l + a + b * p) + (n - 1) * (2 * l + a + b);
    assertEquals(3 * n, r.tokens());
    assertEquals(n / (perRequestMs / 1000), r.tokensPerSecond(), 1e-9);
    assertEquals(3L * n, r.rounds());
    assertEquals(3 * perRequestMs, r.spanMs(), 1e-9);
  }

  /** A fixed window k that the trace always accepts whole yields k + 1 tokens a round. */
  @Test
  void fullAcceptanceYieldsKPlusOnePerRound() {
    int k = 3;
    double l = 5;
    SimResult r = new Simulator(SimFixtures.config(2, l, k, "lookup", 1), SimFixtures.profile(2, 1, 0),
        SimFixtures.profile(1, 0, 0), SimFixtures.greedy(1, 10, 32, 16)).run();
    assertEquals(32, r.tokens());
    assertEquals(8, r.rounds()); // 32 tokens, 4 per round
    assertEquals(1.0, r.acceptance(), 1e-12);
    // a round: lookup 0.02 ms, three hops of 5 ms, two stage calls of 0.5 ms
    assertEquals(8 * (0.02 + 3 * l + 2 * 0.5), r.spanMs(), 1e-9);
  }

  @Test
  void sameSeedSameRunAndAnotherSeedAnotherRun() {
    SimConfig c = new SimConfig(3, 2, 6, 5, 40, 3, 100, false, -1, 4, 60, 20, 3, 48, "node", 1, 2, 8, 256, 8, 16, 0.5,
        0, "f32", 0.3, 0.2, 0.1, 0, 500, 11);
    ComputeProfile t = SimFixtures.profile(6, 3, 0.4);
    ComputeProfile d = SimFixtures.profile(1, 0.2, 0.05);
    AcceptanceTrace tr = SimFixtures.greedy(3, 30, 48, 2);
    String one = new Simulator(c, t, d, tr).run().toJson().without(List.of("wall_seconds", "cpu_seconds")).toString();
    String two = new Simulator(c, t, d, tr).run().toJson().without(List.of("wall_seconds", "cpu_seconds")).toString();
    assertEquals(one, two);
    SimConfig other = new SimConfig(3, 2, 6, 5, 40, 3, 100, false, -1, 4, 60, 20, 3, 48, "node", 1, 2, 8, 256, 8, 16,
        0.5, 0, "f32", 0.3, 0.2, 0.1, 0, 500, 12);
    assertNotEquals(one, new Simulator(other, t, d, tr).run().toJson().without(List.of("wall_seconds", "cpu_seconds")).toString());
  }

  /** Concurrent sessions on one stage share its calls once it batches, and not when it does not. */
  @Test
  void stagesBatchConcurrentSessionsOnlyWhenAllowed() {
    ComputeProfile t = SimFixtures.profile(1, 10, 0.01);
    AcceptanceTrace tr = SimFixtures.greedy(1, 4, 16, 0);
    SimConfig batched = new SimConfig(1, 1, 1, 1, 1, 0, 0, true, 0, 8, 8, 0, 1, 16, "none", 1, 1, 8, 256, 1, 0, 0, 0,
        "f32", 0, 0, 0, 0, 1000, 1);
    SimConfig single = new SimConfig(1, 1, 1, 1, 1, 0, 0, true, 0, 8, 8, 0, 1, 16, "none", 1, 1, 1, 256, 1, 0, 0, 0,
        "f32", 0, 0, 0, 0, 1000, 1);
    SimResult b = new Simulator(batched, t, SimFixtures.profile(1, 0, 0), tr).run();
    SimResult s = new Simulator(single, t, SimFixtures.profile(1, 0, 0), tr).run();
    // without a timer the first session's call starts alone and the other seven queue behind it, so
    // the sessions settle into two cohorts: calls of 1 and 7 rows, 4 on average
    assertEquals(4.0, b.meanStageRows(), 0.1);
    assertEquals(1.0, s.meanStageRows(), 1e-12);
    assertTrue(b.throughput() > 3 * s.throughput(), b.throughput() + " vs " + s.throughput());
  }

  /** Peers leave and come back; sessions fail over, replay, and every request still finishes in full. */
  @Test
  void churnFailsSessionsOverWithoutLosingRequests() {
    SimConfig c = new SimConfig(4, 3, 8, 10, 10, 0, 0, false, 4, 6, 40, 0, 1, 64, "entry", 1, 1, 4, 256, 4, 0, 3600,
        2000, "f32", 0, 0, 0, 0, 300, 5);
    SimResult r = new Simulator(c, SimFixtures.profile(8, 4, 0.5), SimFixtures.profile(1, 0.3, 0.05),
        SimFixtures.greedy(2, 16, 64, 3)).run();
    assertEquals(40, r.requests());
    assertEquals(40L * 64, r.tokens());
    assertTrue(r.leaves() > 5, "peers left: " + r.leaves());
    assertTrue(r.failovers() > 0, "failovers: " + r.failovers());
  }

  /** The node's router avoids a replica behind a slow link. */
  @Test
  void routerPicksTheFastReplica() {
    // testnet links with latencies drawn from [1, 200]: with 2 replicas per stage the router should
    // beat a run on a single replica per stage drawn the same way, on average over seeds
    double withChoice = 0;
    double without = 0;
    for (int seed = 1; seed <= 5; seed++) {
      SimConfig two = new SimConfig(2, 4, 2, 1, 200, 0, 0, true, 0, 1, 2, 0, 1, 16, "none", 1, 1, 1, 256, 1, 0, 0, 0,
          "f32", 0, 0, 0, 0, 1000, seed);
      SimConfig one = new SimConfig(2, 1, 2, 1, 200, 0, 0, true, 0, 1, 2, 0, 1, 16, "none", 1, 1, 1, 256, 1, 0, 0, 0,
          "f32", 0, 0, 0, 0, 1000, seed);
      withChoice += new Simulator(two, SimFixtures.profile(2, 1, 0), SimFixtures.profile(1, 0, 0),
          SimFixtures.greedy(1, 4, 16, 0)).run().tokensPerSecond();
      without += new Simulator(one, SimFixtures.profile(2, 1, 0), SimFixtures.profile(1, 0, 0),
          SimFixtures.greedy(1, 4, 16, 0)).run().tokensPerSecond();
    }
    assertTrue(withChoice > 1.5 * without, withChoice + " vs " + without);
  }

  /**
   * The case: sampling at T=0.8 on a 4-stage 20 ms testnet with the draft on a draft node,
   * per-token acceptance 0.17. Every proposal costs a 40 ms round trip to the draft node, so the
   * node's adaptive window has to back off to no drafting; it stays within 2% of --spec off, while a
   * fixed window loses.
   */
  @Test
  void autoBacksOffWhenSamplingMakesDraftsRarelyAccepted() {
    List<AcceptanceTrace.Prompt> ps = new java.util.ArrayList<>();
    for (int i = 0; i < 5; i++) {
      ps.add(new AcceptanceTrace.Prompt(64, 128, null, 0.17, java.util.Map.of()));
    }
    AcceptanceTrace low = new AcceptanceTrace("t", "d", "model", 0.8, 128, 16, ps);
    ComputeProfile t = SimFixtures.profile(8, 12, 1.3);
    ComputeProfile d = SimFixtures.profile(2, 0.2, 0.05);
    double[] tps = new double[3];
    int[] specs = {0, -1, 4};
    for (int i = 0; i < 3; i++) {
      SimConfig c = new SimConfig(4, 1, 8, 20, 20, 0, 0, true, specs[i], 1, 20, 0, 1, 128, "node", 1, 1, 8, 256, 8, 0,
          0, 0, "f32", 1, 0.5, 0.5, 0, 1000, 3);
      tps[i] = new Simulator(c, t, d, low).run().tokensPerSecond();
    }
    assertTrue(tps[1] >= 0.98 * tps[0], "auto " + tps[1] + " vs off " + tps[0]);
    assertTrue(tps[2] < 0.95 * tps[0], "a fixed window of 4 pays the draft round trip: " + tps[2] + " vs " + tps[0]);
  }
}
