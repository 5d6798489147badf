package dev.dsd.node.stage;

import dev.dsd.node.pipeline.proto.Round;
import dev.dsd.node.pipeline.proto.Tensor;

/** The checks a round passes at a stage before its session's cache is touched. */
final class RoundCheck {
  private RoundCheck() {}

  /**
   * Everything that can be checked before the cache is touched; null when the round is fine.
   *
   * @param queuedLength the session's cache length once the rounds it already accepted have run
   */
  static String problem(Round r, String id, long lastRound, int queuedLength, HostedShard shard, long maxTokens,
      boolean withPenalties) {
    if (!r.getSessionId().equals(id)) {
      return "this stream carries session " + id + ", not " + r.getSessionId();
    }
    if (r.getRound() <= lastRound) {
      return "round " + r.getRound() + " is not after round " + lastRound;
    }
    // against the length the session will have once its queued rounds ran: a session's rounds may
    // follow one another (prefill chunks) before the first of them reaches the stage's next call
    if (Integer.toUnsignedLong(r.getKeep()) > queuedLength) { // uint32: 2^31 and up are negative ints
      return "keep " + Integer.toUnsignedString(r.getKeep()) + " is beyond the " + queuedLength + " cached positions";
    }
    boolean first = shard.batch().isFirst();
    int t;
    if (first) {
      if (r.hasHidden() || r.getTokensCount() == 0) {
        return "the first stage takes token ids and no hidden states";
      }
      t = r.getTokensCount();
      int vocab = shard.config().vocabSize();
      for (int tok : r.getTokensList()) {
        if (tok < 0 || tok >= vocab) {
          return "token id " + Integer.toUnsignedString(tok) + " is outside the vocabulary of " + vocab;
        }
      }
    } else {
      if (!r.hasHidden() || r.getTokensCount() != 0) {
        return "stage [" + shard.from() + "," + shard.to() + ") takes hidden states, not token ids";
      }
      Tensor h = r.getHidden();
      if (h.getShapeCount() != 2 || h.getShape(1) != shard.config().hiddenSize() || h.getShape(0) < 1) {
        return "hidden states of shape " + h.getShapeList() + " do not match [positions, " + shard.config().hiddenSize()
            + "]";
      }
      t = h.getShape(0);
    }
    if ((long) r.getKeep() + t > maxTokens) {
      return "positions " + r.getKeep() + ".." + (r.getKeep() + t) + " exceed the session's " + maxTokens;
    }
    if (r.getRows() < 1 || r.getRows() > t || r.getDraftsCount() >= r.getRows() + 1 || r.getDraftsCount() > t) {
      return "rows " + r.getRows() + " and " + r.getDraftsCount() + " drafts do not fit " + t + " positions";
    }
    int vocab = shard.config().vocabSize();
    if (withPenalties) {
      if (r.getPenaltyTokensCount() != t) {
        return "a session with penalties needs the round's " + t + " token ids, got " + r.getPenaltyTokensCount();
      }
      for (int tok : r.getPenaltyTokensList()) {
        if (tok < 0 || tok >= vocab) {
          return "penalty token id " + Integer.toUnsignedString(tok) + " is outside the vocabulary of " + vocab;
        }
      }
    }
    for (int d : r.getDraftsList()) {
      if (d < 0 || d >= vocab) {
        return "draft token " + Integer.toUnsignedString(d) + " is outside the vocabulary of " + vocab;
      }
    }
    return null;
  }
}
