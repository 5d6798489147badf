package dev.dsd.node.generate;

import dev.dsd.verification.acceptance.TargetScores;
import java.util.List;

/**
 * Runs the target model on new positions of one generation, wherever its layers are: in this
 * process ({@link LocalTargetPass}) or along a pipeline of peers. The speculative loop sees only
 * this, so local and distributed generation are the same algorithm.
 */
public interface TargetPass extends AutoCloseable {

  /**
   * Drops every cached position from {@code keep} on (the rollback of rejected drafts), runs
   * {@code tokens} at positions {@code keep, keep+1, ...} and returns the target's scores at the
   * last {@code rows} of them. {@code drafts} are the draft tokens among the last positions, which
   * a summarizing pass needs to know which probabilities to send.
   */
  TargetScores run(int keep, int[] tokens, int[] drafts, int rows);

  /**
   * A token-tree round: keeps cached positions {@code [0, keep)} and then {@code keepRows}
   * (ascending cache positions from {@code keep} on: the path the last tree round accepted), moved
   * down to follow {@code keep}; runs {@code tokens} with {@code parents} (one per token, relative to
   * the new positions, {@link dev.dsd.pipeline.runtime.TreeShape#ROOT} for one that continues the
   * cache) and returns the target's scores at the last {@code rows} positions.
   *
   * With {@code sample}, the scores also carry one draw per row from the session's distribution
   * ({@link TargetScores#sampled}), made rows in order from a generator seeded with {@code seed}.
   *
   * @throws UnsupportedOperationException where the target cannot run trees ({@link #runsTrees})
   */
  default TargetScores runTree(int keep, int[] keepRows, int[] tokens, int[] parents, int rows, boolean sample,
      long seed) {
    throw new UnsupportedOperationException(getClass().getSimpleName() + " runs chains only");
  }

  /** A tree round without draws. */
  default TargetScores runTree(int keep, int[] keepRows, int[] tokens, int[] parents, int rows) {
    return runTree(keep, keepRows, tokens, parents, rows, false, 0);
  }

  /** Whether {@link #runTree} works here. */
  default boolean runsTrees() {
    return false;
  }

  /** The peers (or {@code local}) that ran each stage, in order. */
  List<String> route();

  /**
   * Nanoseconds the last {@link #run} spent computing on the stages, as they reported it, or -1 when
   * it was all computation (local). The rest of the run's wall time is the network round trip,
   * which the adaptive window weighs on its own.
   */
  default long lastComputeNanos() {
    return -1;
  }

  /** Bytes sent between peers so far (0 when local). */
  long bytesSent();

  @Override
  void close();
}
