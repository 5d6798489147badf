package dev.dsd.pipeline.model;

import java.util.List;

/**
 * Named tensors of a checkpoint, in Hugging Face names ({@code model.layers.3.self_attn.q_proj.weight}).
 *
 * <p>Implementations read lazily: a tensor's bytes are touched only when {@link #tensor} is called,
 * so a shard never reads the weights of layers it does not host. Closing releases mappings.
 */
public interface WeightSource extends AutoCloseable {

  /** Whether the checkpoint has a tensor of this name. */
  boolean has(String name);

  /** Shape of a tensor, outermost dimension first; throws {@link ModelFormatException} if absent. */
  long[] shape(String name);

  /**
   * The tensor converted to F32, row-major, in a fresh array. Throws {@link ModelFormatException}
   * naming the file and tensor if absent or unreadable.
   */
  float[] tensor(String name);

  /**
   * Elements {@code [offset, offset + n)} of a tensor (row-major), converted to F32 into {@code dst[0, n)}:
   * how quantization and conversion stream a tensor without holding it whole.
   */
  void read(String name, long offset, float[] dst, int n);

  /** All tensor names, for validation and diagnostics. */
  List<String> names();

  @Override
  void close();
}
