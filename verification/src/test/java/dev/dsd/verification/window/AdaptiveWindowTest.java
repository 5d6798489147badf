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
