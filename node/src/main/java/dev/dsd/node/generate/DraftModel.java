package dev.dsd.node.generate;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.runtime.BatchRunner;
import dev.dsd.pipeline.runtime.PassCombiner;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import java.nio.file.Path;
import java.util.UUID;

/**
 * A whole draft model in this process, from which each generation gets its own {@link ModelDrafter}.
 * The chain drafters of concurrent generations share batched passes ({@link PassCombiner} over one
 * {@link BatchRunner}); tree drafters, which need tree masks, run on a per-session runner made on
 * first use (trees are off by default, so most entries never load it).
 */
public final class DraftModel implements AutoCloseable {
  private final Checkpoint checkpoint;
  private final RunnerOptions options;
  private final PassCombiner passes;
  private ShardRunner treeRunner; // guarded by this

  private DraftModel(Checkpoint checkpoint, RunnerOptions options, BatchRunner runner) {
    this.checkpoint = checkpoint;
    this.options = options;
    this.passes = new PassCombiner(runner, PassCombiner.DEFAULT_MAX_ROWS);
  }

  /** Loads a draft for a target of {@code targetVocab} ids; a different vocabulary is refused. */
  public static DraftModel load(Path dir, int targetVocab, int targetTokenizerVocab, int threads) {
    Checkpoint ck = Checkpoint.open(dir);
    try {
      if (ck.config().vocabSize() != targetVocab || ck.tokenizer().vocabSize() != targetTokenizerVocab) {
        throw new ModelFormatException(dir + ": the draft's vocabulary (" + ck.config().vocabSize()
            + ") differs from the target's (" + targetVocab + ")");
      }
      RunnerOptions options = RunnerOptions.defaults().withThreads(threads);
      return new DraftModel(ck, options, new BatchRunner(ck.config(), ck.weights(), options));
    } catch (RuntimeException e) {
      ck.close();
      throw e;
    }
  }

  public ModelConfig config() {
    return checkpoint.config();
  }

  public String modelId() {
    return checkpoint.modelId();
  }

  /** A drafter for one generation, sampling like the request (greedy at temperature 0). */
  public Drafter newDrafter(GenerationRequest req, int capacity, int usableVocab) {
    return new ModelDrafter(passes, passes.runner().openSession(UUID.randomUUID().toString(),
        Math.min(capacity, config().maxPositionEmbeddings())), req.temperature(), req.topP(), req.seed(), usableVocab,
        req.penalties(), capacity);
  }

  /** A tree drafter for one generation (scores at the request's temperature). */
  public dev.dsd.node.generate.tree.TreeDrafter newTreeDrafter(GenerationRequest req, int capacity, int usableVocab) {
    ShardRunner runner = treeRunner();
    return new dev.dsd.node.generate.tree.ModelTreeDrafter(runner, runner.openSession(UUID.randomUUID().toString(),
        "local", Math.min(capacity, config().maxPositionEmbeddings())), req.temperature(), usableVocab);
  }

  /** Passes run and rows they carried, for logs and tests. */
  public PassCombiner passes() {
    return passes;
  }

  private synchronized ShardRunner treeRunner() {
    if (treeRunner == null) {
      treeRunner = new ShardRunner(config(), checkpoint.weights(), 0, config().numLayers(), options);
    }
    return treeRunner;
  }

  @Override
  public void close() {
    synchronized (this) {
      if (treeRunner != null) {
        treeRunner.close();
      }
    }
    passes.runner().close();
    checkpoint.close();
  }
}
