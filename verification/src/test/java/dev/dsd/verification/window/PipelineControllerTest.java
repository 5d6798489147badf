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

  @Test
  void aLongRoundTripWithGoodAcceptancePipelines() {
    PipelineController c = new PipelineController(1, 16, PipelineController.MAX_DEPTH);
    for (int i = 0; i < 10; i++) { // a rejection every 15 drafts or so
      feed(c, 3, 4, 4, 100);
      feed(c, 1, 4, 2, 100);
    }
    PipelineController.Choice ch = c.next();
    assertTrue(ch.depth() > 1, "rounds in flight over a 100 ms round trip: " + ch);
    assertTrue(c.rate(ch.k(), ch.depth()) > c.rate(ch.k(), 1), "and it expects more tokens/s than one at a time");
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
  void aFixedWindowOnlyChoosesTheDepth() {
    PipelineController c = new PipelineController(4, 4, 3);
    feed(c, 40, 4, 4, 100);
    assertEquals(4, c.next().k());
    assertTrue(c.next().depth() <= 3);
    assertThrows(IllegalArgumentException.class, () -> new PipelineController(0, 4, 2));
    assertThrows(IllegalArgumentException.class, () -> new PipelineController(1, 4, PipelineController.MAX_DEPTH + 1));
  }
}
