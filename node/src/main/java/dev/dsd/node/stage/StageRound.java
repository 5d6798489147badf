package dev.dsd.node.stage;

import dev.dsd.node.pipeline.proto.Round;

/**
 * A checked round waiting at a stage for the next batched call.
 *
 * @param positions new positions it runs (tokens on the first stage, hidden rows on later ones)
 * @param hidden decoded hidden states [positions, H], null on the first stage
 * @param queuedAt {@link System#nanoTime()} when it arrived, for the queue time it reports
 */
record StageRound(StageSession session, Round round, int positions, float[] hidden, long queuedAt)
    implements StageScheduler.Job {
  @Override
  public boolean live() {
    return session.live();
  }
}
