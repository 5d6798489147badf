package dev.dsd.node.stage;

import dev.dsd.pipeline.runtime.TreeShape;
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
    boolean first = shard.batch().range().isFirst();
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
    String tree = treeProblem(r, t, queuedLength, withPenalties);
    if (tree != null) {
      return tree;
    }
    if ((long) kept(r) + t > maxTokens) {
      return "positions " + kept(r) + ".." + (kept(r) + t) + " exceed the session's " + maxTokens;
    }
    if (r.getRows() < 1 || r.getRows() > t || r.getDraftsCount() >= r.getRows() + 1 || r.getDraftsCount() > t) {
      return "rows " + r.getRows() + " and " + r.getDraftsCount() + " drafts do not fit " + t + " positions";
    }
    int[] draftRows = draftRows(r, t);
    for (int i = 0; draftRows != null && i < draftRows.length; i++) {
      if (draftRows[i] < 0 || draftRows[i] >= r.getRows()) {
        return "draft " + i + " of the tree hangs under position " + (draftRows[i] + t - r.getRows())
            + ", outside the " + r.getRows() + " scored rows";
      }
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

  /** Cache positions a round keeps before its new ones: {@code keep} plus the rows it moves down. */
  static int kept(Round r) {
    return r.getKeep() + r.getKeepRowsCount();
  }

  /** The tree's parents, relative to the round's new positions ({@link TreeShape#ROOT}: the cache); null for a chain. */
  static int[] parents(Round r) {
    if (r.getTreeParentsCount() == 0) {
      return null;
    }
    int[] p = new int[r.getTreeParentsCount()];
    for (int i = 0; i < p.length; i++) {
      p[i] = r.getTreeParents(i) - 1;
    }
    return p;
  }

  /**
   * For a tree round, the scores row each draft is tested at: the drafts are the tree's nodes, the
   * last positions, and a node is tested at its parent's row. Null for a chain, whose draft i is
   * tested at row i. Rows outside the scores come back as they are (negative or past the rows).
   */
  static int[] draftRows(Round r, int t) {
    int[] parents = parents(r);
    if (parents == null) {
      return null;
    }
    int d = r.getDraftsCount();
    int firstRow = t - r.getRows();
    int[] rows = new int[d];
    for (int i = 0; i < d; i++) {
      int parent = parents[t - d + i];
      rows[i] = parent == TreeShape.ROOT ? -1 - firstRow : parent - firstRow;
    }
    return rows;
  }

  private static String treeProblem(Round r, int t, int queuedLength, boolean withPenalties) {
    if (r.getKeepRowsCount() > TreeShape.MAX_DEPTH) {
      return r.getKeepRowsCount() + " kept rows exceed the limit of " + TreeShape.MAX_DEPTH + " (one accepted path)";
    }
    long prev = Integer.toUnsignedLong(r.getKeep()) - 1;
    for (int row : r.getKeepRowsList()) {
      long v = Integer.toUnsignedLong(row);
      if (v <= prev || v >= queuedLength) {
        return "kept rows " + r.getKeepRowsList() + " are not ascending positions in [" + r.getKeep() + ", "
            + queuedLength + ")";
      }
      prev = v;
    }
    if (r.getTreeParentsCount() == 0) {
      return null;
    }
    if (withPenalties) {
      return "a session with penalties takes chain rounds only";
    }
    if (r.getTreeParentsCount() != t) {
      return r.getTreeParentsCount() + " tree parents for " + t + " positions";
    }
    for (int i = 0; i < t; i++) { // uint32 on the wire: anything past the index (2^31 and up too) is refused here
      if (Integer.toUnsignedLong(r.getTreeParents(i)) > i) {
        return "position " + i + " has parent " + (Integer.toUnsignedLong(r.getTreeParents(i)) - 1)
            + ": a parent must be an earlier position";
      }
    }
    return TreeShape.problem(parents(r), TreeShape.MAX_NODES, TreeShape.MAX_DEPTH);
  }
}
