package dev.dsd.node.pipeline;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import java.nio.file.Path;

/** Layers {@code [from, to)} of one model that this node serves, loaded and ready. */
public final class HostedShard implements AutoCloseable {
  private final Checkpoint checkpoint;
  private final ShardRunner runner;
  private final String modelId;

  private HostedShard(Checkpoint checkpoint, ShardRunner runner) {
    this.checkpoint = checkpoint;
    this.runner = runner;
    this.modelId = checkpoint.modelId();
  }

  /** Loads only the layers of the range (plus embeddings on the first stage, head on the last). */
  public static HostedShard load(Path dir, int from, int to, RunnerOptions options) {
    Checkpoint ck = Checkpoint.open(dir, from, to);
    try {
      // the model id keys the run-format weights cache, so it is computed before the runner loads
      return new HostedShard(ck, new ShardRunner(ck.config(), ck.weights(), from, to, options,
          options.cacheDir() == null ? null : ck.modelId()));
    } catch (RuntimeException e) {
      ck.close();
      throw e;
    }
  }

  public String modelId() {
    return modelId;
  }

  public ModelConfig config() {
    return checkpoint.config();
  }

  public Checkpoint checkpoint() {
    return checkpoint;
  }

  public ShardRunner runner() {
    return runner;
  }

  public int from() {
    return runner.from();
  }

  public int to() {
    return runner.to();
  }

  /** Ids the tokenizer can decode; a padded vocabulary's extra ids are never chosen. */
  public int usableVocab() {
    return Math.min(config().vocabSize(), checkpoint.tokenizer().vocabSize());
  }

  @Override
  public String toString() {
    return modelId.substring(0, 12) + "[" + from() + "," + to() + ")";
  }

  @Override
  public void close() {
    runner.close();
    checkpoint.close();
  }
}
