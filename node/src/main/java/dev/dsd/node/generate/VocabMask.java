package dev.dsd.node.generate;

import java.util.Arrays;

/**
 * Many checkpoints pad vocab_size beyond the tokenizer's vocabulary (for alignment). Ids the
 * tokenizer cannot decode must never be sampled, so their logits are set to -infinity.
 */
final class VocabMask {
  private VocabMask() {}

  static void apply(float[] logits, int stride, int usable) {
    if (usable >= stride) {
      return;
    }
    for (int row = 0; row < logits.length; row += stride) {
      Arrays.fill(logits, row + usable, row + stride, Float.NEGATIVE_INFINITY);
    }
  }
}
