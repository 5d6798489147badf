package dev.dsd.verification.window;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The pipeline controller pipelines where the network is the cost, and not where compute is. */
class PipelineControllerTest {
  static final long MS = 1_000_000;

  /** Rounds of k drafts, {@code accepted} of them standing, with the given network time and 1+0.25k ms compute. */
  static void feed(PipelineController c, int rounds, int k, int accepted, long rttMs) {
    for (int i = 0; i < rounds; i++) {
      long compute = (long) ((1 + 0.25 * k) * MS);
      c.observe(k, accepted, accepted < k, k * MS / 2, compute, compute / 4, rttMs * MS, 1);
    }
  }

  /** One run: {@code run} drafts stand (in rounds of k), then one is rejected. */
  static void run(PipelineController c, int k, int run, long rttMs) {
    feed(c, run / k, k, k, rttMs);
    feed(c, 1, k, run % k, rttMs);
  }

  @Test
  void aLongRoundTripWithLongRunsPipelines() {
    PipelineController c = new PipelineController(1, 16, PipelineController.MAX_DEPTH);
    for (int i = 0; i < 10; i++) { // runs longer than any window, and some short ones
      for (int r : new int[] {30, 3, 60, 10, 45, 0}) {
        run(c, 4, r, 100);
      }
    }
    PipelineController.Choice ch = c.next();
    assertTrue(ch.depth() > 1, "rounds in flight over a 100 ms round trip: " + c);
    assertTrue(c.rate(ch.k(), ch.depth()) > c.rate(ch.k(), 1), "and it expects more tokens/s than one at a time");
  }

  @Test
  void runsOneWindowCoversStaySynchronous() {
    PipelineController c = new PipelineController(1, 16, PipelineController.MAX_DEPTH);
    for (int i = 0; i < 20; i++) { // a rejection after exactly 14 drafts: one round of 15 takes all of it
      run(c, 4, 14, 100);
    }
    assertEquals(1, c.next().depth(), "a window of 15 ends every run in one round trip: " + c);
  }

  @Test
  void noNetworkOrPoorAcceptanceStaysSynchronous() {
    PipelineController local = new PipelineController(1, 16, PipelineController.MAX_DEPTH);
    feed(local, 40, 4, 3, 0);
    assertEquals(1, local.next().depth(), "at 0 ms a cancelled round only wastes compute: " + local.next());
    PipelineController poor = new PipelineController(1, 16, PipelineController.MAX_DEPTH);
    feed(poor, 40, 4, 0, 100);
    assertEquals(1, poor.next().depth(), "every round rejected: nothing in flight would stand: " + poor.next());
  }

  @Test
  void burstsOfAgreementPipelineWhereTheMeanAcceptanceWouldNot() {
    PipelineController c = new PipelineController(1, 16, PipelineController.MAX_DEPTH);
    for (int i = 0; i < 20; i++) { // runs of 40 standing drafts, each followed by two rejections in a row
      feed(c, 5, 8, 8, 100);
      feed(c, 1, 8, 0, 100);
      feed(c, 2, 8, 0, 100);
    }
    PipelineController.Choice ch = c.next();
    assertTrue(ch.depth() > 1, "runs of 40 over a 100 ms round trip: " + c);
    double sync = 0;
    for (int k = 1; k <= 16; k++) {
      sync = Math.max(sync, c.rate(k, 1));
    }
    assertTrue(c.rate(ch.k(), ch.depth()) > 1.5 * sync, "a run of 40 takes one round trip, not 3: " + c);
  }

  @Test
  void loopbackRoundTripsAreWorkNotDistance() {
    PipelineController c = new PipelineController(1, 16, PipelineController.MAX_DEPTH);
    feed(c, 60, 4, 4, 3); // every draft stands, but the 3 ms "network" is protocol work on the same cores
    assertEquals(1, c.next().depth(), "at 0 ms rounds in flight only add work: " + c);
  }

  @Test
  void aFixedWindowOnlyChoosesTheDepth() {
    PipelineController c = new PipelineController(4, 4, 3);
    feed(c, 40, 4, 4, 100);
    assertEquals(4, c.next().k());
    assertTrue(c.next().depth() <= 3);
    assertThrows(IllegalArgumentException.class, () -> new PipelineController(0, 4, 2));
    assertThrows(IllegalArgumentException.class, () -> new PipelineController(1, 4, PipelineController.MAX_DEPTH + 1));
  }
}
