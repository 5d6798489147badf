package dev.dsd.node.generate;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import java.nio.file.Path;
import java.util.UUID;

/** A whole draft model in this process, from which each generation gets its own {@link ModelDrafter}. */
public final class DraftModel implements AutoCloseable {
  private final Checkpoint checkpoint;
  private final ShardRunner runner;

  private DraftModel(Checkpoint checkpoint, ShardRunner runner) {
    this.checkpoint = checkpoint;
    this.runner = runner;
  }

  /** Loads a draft for a target of {@code targetVocab} ids; a different vocabulary is refused. */
  public static DraftModel load(Path dir, int targetVocab, int targetTokenizerVocab, int threads) {
    Checkpoint ck = Checkpoint.open(dir);
    try {
      if (ck.config().vocabSize() != targetVocab || ck.tokenizer().vocabSize() != targetTokenizerVocab) {
        throw new ModelFormatException(dir + ": the draft's vocabulary (" + ck.config().vocabSize()
            + ") differs from the target's (" + targetVocab + ")");
      }
      return new DraftModel(ck, new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
          RunnerOptions.defaults().withThreads(threads)));
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
    return new ModelDrafter(runner, runner.openSession(UUID.randomUUID().toString(), "local",
        Math.min(capacity, config().maxPositionEmbeddings())), req.temperature(), req.topP(), req.seed(), usableVocab,
        req.penalties(), capacity);
  }

  /** A tree drafter for one generation (scores at the request's temperature). */
  public dev.dsd.node.generate.tree.TreeDrafter newTreeDrafter(GenerationRequest req, int capacity, int usableVocab) {
    return new dev.dsd.node.generate.tree.ModelTreeDrafter(runner, runner.openSession(UUID.randomUUID().toString(),
        "local", Math.min(capacity, config().maxPositionEmbeddings())), req.temperature(), usableVocab);
  }

  @Override
  public void close() {
    runner.close();
    checkpoint.close();
  }
}
