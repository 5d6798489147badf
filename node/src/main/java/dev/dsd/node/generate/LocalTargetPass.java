package dev.dsd.node.generate;

import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.processing.PenaltyState;
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

  @Override
  public TargetScores run(int keep, int[] tokens, int[] drafts, int rows) {
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
