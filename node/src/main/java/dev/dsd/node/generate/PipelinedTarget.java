package dev.dsd.node.generate;

import dev.dsd.verification.acceptance.TargetScores;

/**
 * A target that takes several rounds of one generation in flight: the pipelined loop sends a round
 * before the verdict on the previous one is in, as if all its drafts will be accepted, and cancels
 * the rounds built on a rejected draft. Rounds run and answer in the order they were sent.
 */
public interface PipelinedTarget extends TargetPass {

  /**
   * Sends a round without waiting: drops cached positions from {@code keep} on, runs {@code tokens}
   * at positions {@code keep, keep+1, ...} and will answer the scores of the last {@code rows}.
   *
   * @return the round's handle for {@link #await} and {@link #cancel}, increasing with each send
   */
  long send(int keep, int[] tokens, int[] drafts, int rows);

  /** Waits for a sent, uncancelled round's scores; answers of earlier rounds not awaited are dropped. */
  TargetScores await(long round);

  /**
   * Cancels every round sent after {@code afterRound} (whose answer the caller has) and rolls the
   * cache back to {@code keep} positions; their answers are never returned.
   */
  void cancel(long afterRound, int keep);

  /** Nanoseconds the slowest stage computed for the last awaited round, or -1 when unknown. */
  default long lastBottleneckNanos() {
    return -1;
  }

  /** {@link System#nanoTime()} when the last awaited round's answer arrived, or -1 when unknown. */
  default long lastAnswerNanos() {
    return -1;
  }

  /** Nanoseconds the last awaited round waited in the stages' queues, or -1 when unknown. */
  default long lastQueueNanos() {
    return -1;
  }

  /** Sessions' rounds that shared the busiest stage's call with the last awaited round (1: alone). */
  default int lastBatchRows() {
    return 1;
  }

  @Override
  default TargetScores run(int keep, int[] tokens, int[] drafts, int rows) {
    return await(send(keep, tokens, drafts, rows));
  }
}
