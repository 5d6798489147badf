package dev.dsd.node.stage;

import dev.dsd.node.pipeline.proto.RoundResult;
import dev.dsd.node.pipeline.proto.Row;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.sampling.Distributions;
import java.util.SplittableRandom;

/**
 * A round's rows as draws instead of distributions (Round.sample): per row the argmax and one token
 * drawn from the session's distribution there, rows in order from one generator seeded by the
 * entry, so the entry can reproduce a generation from its seed. What a token tree of deterministic
 * candidates needs to be verified exactly, in a few bytes per node instead of the row's support.
 */
final class SampledRows {
  private SampledRows() {}

  static void add(RoundResult.Builder b, TargetScores s, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    for (int row = 0; row < s.rows(); row++) {
      b.addRows(Row.newBuilder().setArgmax(s.argmax(row))
          .setSampled(Distributions.draw(s.distribution(row), random.nextDouble())));
    }
  }
}
