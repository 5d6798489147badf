package dev.dsd.pipeline.runtime;

import dev.dsd.pipeline.model.ModelConfig;

/**
 * The contiguous layers {@code [from, to)} of a model that a runner hosts, and what follows from
 * where they sit: the first range takes token ids, the last returns logits, any other passes hidden
 * states on. One type for the per-session and the batched runner, so the two cannot disagree.
 */
public record LayerRange(ModelConfig config, int from, int to) {
  public LayerRange {
    if (from < 0 || from >= to || to > config.numLayers()) {
      throw new IllegalArgumentException("layer range [" + from + ", " + to + ") outside [0, " + config.numLayers() + ")");
    }
  }

  public boolean isFirst() {
    return from == 0;
  }

  public boolean isLast() {
    return to == config.numLayers();
  }

  /** Width of one output row: vocabulary size for the last range, hidden size otherwise. */
  public int outputWidth() {
    return isLast() ? config.vocabSize() : config.hiddenSize();
  }

  /** Bytes of keys and values one cached position takes in these layers. */
  public long kvBytesPerToken() {
    return 2L * (to - from) * config.kvDim() * Float.BYTES;
  }
}
