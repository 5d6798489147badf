package dev.dsd.node.generate;

import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.processing.PenaltyState;
import dev.dsd.pipeline.runtime.TreeShape;
import java.util.Arrays;
import java.util.List;

/**
 * The whole target in this process: one shard {@code [0, L)} with its own KV cache. A long prompt
 * runs in passes of at most {@code prefillChunk} positions ({@link PrefillChunks}). Pipelined
 * rounds run as they are sent (there is nothing to overlap in one process); their scores wait for
 * {@link #await}, and a cancel forgets them.
 */
public final class LocalTargetPass implements PipelinedTarget {
  private final ShardRunner runner;
  private final ShardSession session;
  private final AcceptanceRule rule;
  private final int usable;
  private final int prefillChunk;
  private final PenaltyState penalties;
  private final java.util.TreeMap<Long, TargetScores> answers = new java.util.TreeMap<>();
  private long rounds;
  private int[] lastInput = new int[0]; // the last round's tokens, at cache positions lastAt..
  private int lastAt;

  public LocalTargetPass(ShardRunner runner, ShardSession session, AcceptanceRule rule, int usable) {
    this(runner, session, rule, usable, PrefillChunks.DEFAULT_TOKENS, null);
  }

  public LocalTargetPass(ShardRunner runner, ShardSession session, AcceptanceRule rule, int usable, int prefillChunk) {
    this(runner, session, rule, usable, prefillChunk, null);
  }

  /** {@code penalties}: the generation's token history for its penalties, null when it has none. */
  public LocalTargetPass(ShardRunner runner, ShardSession session, AcceptanceRule rule, int usable,
      PenaltyState penalties) {
    this(runner, session, rule, usable, PrefillChunks.DEFAULT_TOKENS, penalties);
  }

  public LocalTargetPass(ShardRunner runner, ShardSession session, AcceptanceRule rule, int usable, int prefillChunk,
      PenaltyState penalties) {
    this.penalties = penalties;
    this.runner = runner;
    this.session = session;
    this.rule = rule;
    this.usable = usable;
    this.prefillChunk = prefillChunk;
  }

  /**
   * A tree round on the per-session runner, whose cache (ORT's own output tensors) cannot move rows:
   * it keeps {@code [0, keep)} and feeds the accepted path's tokens again, as a chain under the
   * tree, in the same call. Locally a few more positions per call cost less than a copy of the
   * cache would; a pipeline stage compacts instead ({@link dev.dsd.pipeline.runtime.StageKv#compact}).
   */
  @Override
  public TargetScores runTree(int keep, int[] keepRows, int[] tokens, int[] parents, int rows, boolean sample,
      long seed) {
    if (penalties != null) {
      throw new IllegalArgumentException("a generation with penalties runs chains only");
    }
    int[] again = new int[keepRows.length];
    for (int j = 0; j < keepRows.length; j++) {
      int at = keepRows[j] - lastAt;
      if (keepRows[j] < keep || at < 0 || at >= lastInput.length || (j > 0 && keepRows[j] <= keepRows[j - 1])) {
        throw new IllegalArgumentException("kept rows " + Arrays.toString(keepRows) + " are not positions of the last"
            + " round after " + keep);
      }
      again[j] = lastInput[at];
    }
    session.truncate(keep);
    int[] all = Arrays.copyOf(again, again.length + tokens.length);
    System.arraycopy(tokens, 0, all, again.length, tokens.length);
    int[] allParents = TreeShape.chain(all.length);
    for (int i = 0; i < parents.length; i++) {
      allParents[again.length + i] = parents[i] == TreeShape.ROOT ? again.length - 1 : again.length + parents[i];
    }
    int[] cuts = PrefillChunks.cuts(all.length, rows, prefillChunk);
    float[] logits = null;
    for (int i = 0; i + 1 < cuts.length; i++) {
      int[] part = Arrays.copyOfRange(all, cuts[i], cuts[i + 1]);
      int[] p = TreeShape.chunk(allParents, cuts[i], cuts[i + 1]);
      logits = runner.forwardTree(session, part, session.length(), p);
    }
    lastInput = all;
    lastAt = keep;
    int n = all.length - cuts[cuts.length - 2];
    int vocab = runner.config().vocabSize();
    float[] last = Arrays.copyOfRange(logits, (n - rows) * vocab, n * vocab);
    VocabMask.apply(last, vocab, usable);
    TargetScores scores = rule.scores(last, vocab);
    return sample ? dev.dsd.verification.tree.SampledScores.draw(scores, seed) : scores;
  }

  @Override
  public boolean runsTrees() {
    return penalties == null;
  }

  @Override
  public TargetScores run(int keep, int[] tokens, int[] drafts, int rows) {
    lastInput = tokens.clone();
    lastAt = keep;
    session.truncate(keep);
    int[] cuts = PrefillChunks.cuts(tokens.length, rows, prefillChunk);
    float[] logits = null;
    for (int i = 0; i + 1 < cuts.length; i++) {
      logits = runner.forwardTokens(session, Arrays.copyOfRange(tokens, cuts[i], cuts[i + 1]));
    }
    int n = tokens.length - cuts[cuts.length - 2]; // positions of the last pass
    int vocab = runner.config().vocabSize();
    float[] last = Arrays.copyOfRange(logits, (n - rows) * vocab, n * vocab);
    VocabMask.apply(last, vocab, usable);
    if (penalties != null) {
      penalties.process(keep, tokens, last, rows, vocab);
    }
    return rule.scores(last, vocab);
  }

  @Override
  public long send(int keep, int[] tokens, int[] drafts, int rows) {
    answers.put(++rounds, run(keep, tokens, drafts, rows));
    return rounds;
  }

  @Override
  public TargetScores await(long round) {
    TargetScores s = answers.remove(round);
    if (s == null) {
      throw new IllegalArgumentException("round " + round + " was not sent, was cancelled or was awaited already");
    }
    answers.headMap(round).clear();
    return s;
  }

  @Override
  public void cancel(long afterRound, int keep) {
    answers.tailMap(afterRound, false).clear();
    session.truncate(keep);
  }

  @Override
  public List<String> route() {
    return List.of("local");
  }

  @Override
  public long bytesSent() {
    return 0;
  }

  @Override
  public void close() {
    session.close();
  }
}
