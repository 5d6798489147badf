package dev.dsd.verification.window;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The controller's choices on synthetic measurements that stand for known situations. */
class AdaptiveWindowTest {
  /** Simulates rounds: per-token acceptance a, draft ms per token, verify = base + perToken * k, network rtt. */
  static int settle(double a, double draftMs, double verifyBaseMs, double verifyPerTokenMs, double rttMs) {
    return settle(a, 0, draftMs, verifyBaseMs, verifyPerTokenMs, rttMs);
  }

  /** As above, with a draft that costs draftFixedMs per proposal besides its per-token time. */
  static int settle(double a, double draftFixedMs, double draftMs, double verifyBaseMs, double verifyPerTokenMs,
      double rttMs) {
    AdaptiveWindow w = new AdaptiveWindow(1, 16);
    SplittableRandom r = new SplittableRandom(1);
    int k = 0;
    for (int round = 0; round < 300; round++) {
      k = w.next();
      int acc = 0;
      while (acc < k && r.nextDouble() < a) {
        acc++;
      }
      long draft = (long) ((draftFixedMs + k * draftMs) * 1e6);
      long verify = (long) ((verifyBaseMs + verifyPerTokenMs * k + rttMs) * 1e6);
      w.observe(k, acc, draft, verify, (long) (rttMs * 1e6));
    }
    return w.next();
  }

  @Test
  void longLinksAndGoodDraftsWantLongWindows() {
    int k = settle(0.85, 0.3, 2, 0.3, 40);
    assertTrue(k >= 10, "k=" + k);
  }

  @Test
  void poorDraftsWantShortWindows() {
    int k = settle(0.2, 0.3, 2, 0.3, 40);
    assertTrue(k <= 3, "k=" + k);
  }

  @Test
  void anExpensiveDraftWithoutNetworkWantsAShortWindow() {
    int k = settle(0.6, 3, 2, 0.3, 0);
    assertTrue(k <= 2, "k=" + k);
  }

  @Test
  void aRemoteDraftsRoundTripIsPaidOncePerProposalNotPerToken() {
    // draft node 30 ms away, local target: a round costs 32 + 0.5k ms, best near k = 12 at a = 0.8
    int remote = settle(0.8, 30, 0.2, 2, 0.3, 0);
    assertTrue(remote >= 8, "k=" + remote);
    // the same draft time spent per token instead would make long windows dear
    int perToken = settle(0.8, 0, 3.0, 2, 0.3, 0);
    assertTrue(perToken < remote, "per-token k=" + perToken + " remote k=" + remote);
  }

  @Test
  void estimatesTrackTheInputs() {
    AdaptiveWindow w = new AdaptiveWindow(1, 8);
    for (int i = 0; i < 200; i++) {
      int k = w.next();
      w.observe(k, k, k * 1_000_000L, (5 + k) * 1_000_000L, 0);
    }
    assertTrue(w.acceptance() > 0.95, "all accepted: " + w.acceptance());
    assertEquals(8, w.next(), "everything accepted and verification cheap: the widest window");
    assertEquals(3.0, AdaptiveWindow.expectedTokens(0.5, 1) * 2, 1e-9);
  }

  /** Tokens per ms over {@code rounds} rounds of a window run against the synthetic round model. */
  static double rate(AdaptiveWindow w, int rounds, double a, double draftFixedMs, double verifyMs, double rttMs) {
    SplittableRandom r = new SplittableRandom(3);
    double tokens = 0;
    double ms = 0;
    for (int round = 0; round < rounds; round++) {
      int k = w.next();
      int acc = 0;
      while (acc < k && r.nextDouble() < a) {
        acc++;
      }
      double draft = k == 0 ? 0 : draftFixedMs + 0.3 * k;
      double verify = verifyMs + 0.2 * k + rttMs;
      w.observe(k, acc, (long) (draft * 1e6), (long) (verify * 1e6), (long) (rttMs * 1e6));
      tokens += acc + 1;
      ms += draft + verify;
    }
    return tokens / ms;
  }

  /**
   * Sampling at T=0.8 on a 4-stage 20 ms pipeline with a draft node 20 ms away: drafts are rarely
   * accepted and each proposal costs a 40 ms round trip, so speculation loses; allowed to, the
   * window turns it off and stays within 2% of plain decoding, probes included.
   */
  @Test
  void turnsSpeculationOffWhenItDoesNotPay() {
    double off = 1 / (10 + 100.0);
    double auto = rate(new AdaptiveWindow(0, 16), 2000, 0.17, 40, 10, 100);
    assertTrue(auto >= 0.98 * off, "auto " + auto + " vs off " + off);
    double neverOff = rate(new AdaptiveWindow(1, 16), 2000, 0.17, 40, 10, 100);
    assertTrue(neverOff < 0.97 * off, "k >= 1 always pays the draft round trip: " + neverOff + " vs off " + off);
  }

  @Test
  void probesTurnSpeculationBackOnWhenTheTextBecomesPredictable() {
    AdaptiveWindow w = new AdaptiveWindow(0, 16);
    rate(w, 300, 0.1, 40, 10, 100);
    assertEquals(0, w.next(), "low acceptance: off");
    rate(w, 400, 0.95, 40, 10, 100);
    assertTrue(w.next() >= 6, "predictable text, long links: k=" + w.next());
  }

  /** The measured round trip moves the round-time estimate at once, so a slower network widens the window. */
  @Test
  void aLongerRoundTripWidensTheWindow() {
    AdaptiveWindow w = new AdaptiveWindow(1, 16);
    rate(w, 200, 0.7, 0, 5, 0);
    int near = w.next();
    rate(w, 30, 0.7, 0, 5, 200);
    int far = w.next();
    assertTrue(far > near, "near k=" + near + " far k=" + far);
  }

  @Test
  void memoryCarriesEstimatesAcrossRequestsOnTheSameRoute() {
    WindowMemory m = new WindowMemory(0, 16);
    AdaptiveWindow first = m.start("a,b");
    assertEquals(2, first.next(), "a fresh window warms up, first with k=2");
    rate(first, 100, 0.9, 0, 5, 60);
    int settled = first.next();
    m.finish("a,b", first);
    AdaptiveWindow second = m.start("a,b");
    assertEquals(settled, second.next(), "the same route continues where the last request stopped");
    assertEquals(2, m.start("c,d").next(), "another route warms up");
    for (int i = 0; i < WindowMemory.MAX_ROUTES + 10; i++) {
      m.finish("r" + i, first);
    }
    assertEquals(WindowMemory.MAX_ROUTES, m.size());
  }

  /** Settles with every round run in a stage call of {@code rows} sessions. */
  static int settleSharing(double rows, double a, double verifyBaseMs, double verifyPerTokenMs) {
    AdaptiveWindow w = new AdaptiveWindow(1, 16);
    SplittableRandom r = new SplittableRandom(2);
    for (int round = 0; round < 300; round++) {
      int k = w.next();
      int acc = 0;
      while (acc < k && r.nextDouble() < a) {
        acc++;
      }
      w.observe(k, acc, (long) (0.2 * k * 1e6), (long) ((verifyBaseMs + verifyPerTokenMs * k) * 1e6), 0);
      w.sharing(rows);
    }
    return w.next();
  }

  @Test
  void aBigBatchOnComputeBoundStagesShrinksTheWindowAndWeightBoundStagesKeepIt() {
    int alone = settleSharing(1, 0.85, 20, 1.0);
    int crowded = settleSharing(16, 0.85, 20, 1.0);
    assertTrue(alone >= 6, "k alone=" + alone);
    assertTrue(crowded < alone && crowded <= 4, "k in batches of 16=" + crowded + " alone=" + alone);
    // each token nearly free (reading the weights dominates): batching changes little
    int flatAlone = settleSharing(1, 0.85, 20, 0.02);
    int flatCrowded = settleSharing(16, 0.85, 20, 0.02);
    assertTrue(flatCrowded >= 8 && flatCrowded > crowded, "k=" + flatCrowded + " vs " + flatAlone + " alone");
  }
}
