package dev.dsd.node.stage;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.StageBatchRunner;
import java.nio.file.Path;

/** Layers {@code [from, to)} of one model that this node serves, loaded and ready. */
public final class HostedShard implements AutoCloseable {
  private final Checkpoint checkpoint;
  private final StageBatchRunner batch;
  private final RunnerOptions options;
  private final String modelId;
  private ShardRunner runner; // built on first use: a stage serves through the batched runner

  private HostedShard(Checkpoint checkpoint, StageBatchRunner batch, RunnerOptions options) {
    this.checkpoint = checkpoint;
    this.batch = batch;
    this.options = options;
    this.modelId = checkpoint.modelId();
  }

  /** Loads only the layers of the range (plus embeddings on the first stage, head on the last). */
  public static HostedShard load(Path dir, int from, int to, RunnerOptions options) {
    Checkpoint ck = Checkpoint.open(dir, from, to);
    try {
      // the model id keys the run-format weights cache, so it is computed before the runner loads
      return new HostedShard(ck, new StageBatchRunner(ck.config(), ck.weights(), from, to, options,
          options.cacheDir() == null ? null : ck.modelId()), options);
    } catch (RuntimeException e) {
      ck.close();
      throw e;
    }
  }

  /**
   * As {@link #load(Path, int, int, RunnerOptions)} with the linear weights kept in {@code weights}: the
   * format is what this stage tells the swarm and what it accepts sessions for.
   */
  public static HostedShard load(Path dir, int from, int to, RunnerOptions options, WeightFormat weights) {
    return load(dir, from, to, options.withWeights(weights));
  }

  /** The format the shard's linear weights are kept in (and announced). */
  public WeightFormat weights() {
    return options.weights();
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

  /** What the stage runs every round on: all waiting sessions' rounds in one call. */
  public StageBatchRunner batch() {
    return batch;
  }

  /**
   * A per-session runner over the same layers, loaded on first use (a second copy of the weights in
   * ONNX Runtime): for checks that recompute a stage's work, not for serving.
   */
  public synchronized ShardRunner runner() {
    if (runner == null) {
      runner = new ShardRunner(checkpoint.config(), checkpoint.weights(), from(), to(), options,
          options.cacheDir() == null ? null : modelId);
    }
    return runner;
  }

  public int from() {
    return batch.from();
  }

  public int to() {
    return batch.to();
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
    synchronized (this) {
      if (runner != null) {
        runner.close();
      }
    }
    batch.close();
    checkpoint.close();
  }
}
