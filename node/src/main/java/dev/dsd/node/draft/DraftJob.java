package dev.dsd.node.draft;

/** Work the batcher runs a step at a time, one row of a pass per step, until it is done. */
interface DraftJob {
  ServedSession session();

  /** The row's new tokens for its next pass. */
  int[] tokens();

  /** Consumes the logits of the tokens just run in a pass of {@code rows} rows; true once done. */
  boolean advance(float[] logits, int rows, long passNanos);

  /** Sends the answer; called once, after {@link #advance} returned true. */
  void finish();
}
