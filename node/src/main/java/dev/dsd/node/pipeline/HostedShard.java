package dev.dsd.node.pipeline;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import java.nio.file.Path;

/** Layers {@code [from, to)} of one model that this node serves, loaded and ready. */
public final class HostedShard implements AutoCloseable {
  private final Checkpoint checkpoint;
  private final ShardRunner runner;
  private final String modelId;
  private final WeightFormat weights;

  private HostedShard(Checkpoint checkpoint, ShardRunner runner, WeightFormat weights) {
    this.checkpoint = checkpoint;
    this.runner = runner;
    this.modelId = checkpoint.modelId();
    this.weights = weights;
  }

  /** Loads only the layers of the range (plus embeddings on the first stage, head on the last), in f32. */
  public static HostedShard load(Path dir, int from, int to, RunnerOptions options) {
    return load(dir, from, to, options, WeightFormat.F32);
  }

  /**
   * As {@link #load(Path, int, int, RunnerOptions)}, announcing {@code weights} as the format its
   * linear weights are kept in: the format is what this stage tells the swarm and what it accepts
   * sessions for.
   */
  public static HostedShard load(Path dir, int from, int to, RunnerOptions options, WeightFormat weights) {
    Checkpoint ck = Checkpoint.open(dir, from, to);
    try {
      return new HostedShard(ck, new ShardRunner(ck.config(), ck.weights(), from, to, options), weights);
    } catch (RuntimeException e) {
      ck.close();
      throw e;
    }
  }

  public String modelId() {
    return modelId;
  }

  /** The format this shard keeps its linear weights in; sessions of another format are refused. */
  public WeightFormat weights() {
    return weights;
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
    return modelId.substring(0, 12) + "[" + from() + "," + to() + ") " + weights.id();
  }

  @Override
  public void close() {
    runner.close();
    checkpoint.close();
  }
}
