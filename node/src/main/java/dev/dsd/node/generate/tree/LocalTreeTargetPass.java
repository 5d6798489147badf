package dev.dsd.node.generate.tree;

import dev.dsd.node.generate.PrefillChunks;
import dev.dsd.node.generate.TargetPass;
import dev.dsd.node.generate.VocabMask;
import dev.dsd.pipeline.runtime.StageBatchRunner;
import dev.dsd.pipeline.runtime.StageKv;
import dev.dsd.pipeline.runtime.TreeShape;
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.tree.SampledScores;
import java.util.Arrays;
import java.util.List;

/**
 * The whole target in this process on the batched stage runner (layers [0, L) as one stage), whose
 * paged cache can keep an accepted path's rows: what a pipeline does, without the network. Scores
 * are read at the session's temperature and top-p.
 */
public final class LocalTreeTargetPass implements TargetPass {
  private final StageBatchRunner runner;
  private final StageKv kv;
  private final double temperature;
  private final double topP;
  private final int usable;

  public LocalTreeTargetPass(StageBatchRunner runner, StageKv kv, double temperature, double topP, int usable) {
    if (!runner.range().isFirst() || !runner.range().isLast()) {
      throw new IllegalArgumentException("a local target runs every layer, not [" + runner.from() + ", " + runner.to()
          + ")");
    }
    this.runner = runner;
    this.kv = kv;
    this.temperature = temperature;
    this.topP = topP;
    this.usable = usable;
  }

  @Override
  public TargetScores run(int keep, int[] tokens, int[] drafts, int rows) {
    return runTree(keep, new int[0], tokens, TreeShape.chain(tokens.length), rows);
  }

  @Override
  public TargetScores runTree(int keep, int[] keepRows, int[] tokens, int[] parents, int rows, boolean sample,
      long seed) {
    if (keepRows.length == 0) {
      kv.truncate(keep);
    } else {
      kv.compact(keep, keepRows);
    }
    // a long prompt runs as chain passes first; the tree (within the last rows) runs in the last one
    int[] cuts = PrefillChunks.cuts(tokens.length, rows, PrefillChunks.DEFAULT_TOKENS);
    float[] logits = null;
    for (int i = 0; i + 1 < cuts.length; i++) {
      int[] part = Arrays.copyOfRange(tokens, cuts[i], cuts[i + 1]);
      StageBatchRunner.Row row = StageBatchRunner.Row.tokens(kv, part)
          .withTree(TreeShape.chunk(parents, cuts[i], cuts[i + 1]));
      logits = runner.forward(List.of(row))[0];
    }
    int n = tokens.length - cuts[cuts.length - 2];
    int vocab = runner.config().vocabSize();
    float[] last = Arrays.copyOfRange(logits, (n - rows) * vocab, n * vocab);
    VocabMask.apply(last, vocab, usable);
    LogitScores scores = new LogitScores(last, vocab, temperature, topP);
    return sample ? SampledScores.draw(scores, seed) : scores;
  }

  @Override
  public boolean runsTrees() {
    return true;
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
    kv.close();
  }
}
