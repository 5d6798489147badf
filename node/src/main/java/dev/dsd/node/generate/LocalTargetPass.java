package dev.dsd.node.generate;

import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.processing.PenaltyState;
import java.util.Arrays;
import java.util.List;

/** The whole target in this process: one shard {@code [0, L)} with its own KV cache. */
public final class LocalTargetPass implements TargetPass {
  private final ShardRunner runner;
  private final ShardSession session;
  private final AcceptanceRule rule;
  private final int usable;
  private final PenaltyState penalties;

  public LocalTargetPass(ShardRunner runner, ShardSession session, AcceptanceRule rule, int usable) {
    this(runner, session, rule, usable, null);
  }

  /** {@code penalties}: the generation's token history for its penalties, null when it has none. */
  public LocalTargetPass(ShardRunner runner, ShardSession session, AcceptanceRule rule, int usable,
      PenaltyState penalties) {
    this.penalties = penalties;
    this.runner = runner;
    this.session = session;
    this.rule = rule;
    this.usable = usable;
  }

  @Override
  public TargetScores run(int keep, int[] tokens, int[] drafts, int rows) {
    session.truncate(keep);
    float[] logits = runner.forwardTokens(session, tokens);
    int vocab = runner.config().vocabSize();
    float[] last = Arrays.copyOfRange(logits, (tokens.length - rows) * vocab, tokens.length * vocab);
    VocabMask.apply(last, vocab, usable);
    if (penalties != null) {
      penalties.process(keep, tokens, last, rows, vocab);
    }
    return rule.scores(last, vocab);
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
