package dev.dsd.node.generate;

import java.util.Arrays;

/**
 * Many checkpoints pad vocab_size beyond the tokenizer's vocabulary (for alignment). Ids the
 * tokenizer cannot decode must never be sampled, so their logits are set to -infinity.
 */
public final class VocabMask {
  private VocabMask() {}

  /** Masks every row of {@code logits} (rows of {@code stride} values). */
  public static void apply(float[] logits, int stride, int usable) {
    for (int row = 0; row < logits.length; row += stride) {
      applyRow(logits, row, stride, usable);
    }
  }

  /** Masks the one row starting at {@code offset}. */
  public static void applyRow(float[] logits, int offset, int stride, int usable) {
    if (usable < stride) {
      Arrays.fill(logits, offset + usable, offset + stride, Float.NEGATIVE_INFINITY);
    }
  }
}
