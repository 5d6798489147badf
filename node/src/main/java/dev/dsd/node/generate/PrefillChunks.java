package dev.dsd.node.generate;

/**
 * How a long run of new positions (a prompt, or a failover's replay) is cut into passes, so that no
 * pass carries one giant activation: a 2048-token prompt of a 2048-wide model would be a 16 MiB
 * hidden-state frame between stages, a 16 MiB attention mask and, on the last stage, 2048 rows of
 * logits (262 MB at a 32000-token vocabulary). Causal attention over the cached prefix makes the
 * chunked passes compute what one pass would, up to float rounding.
 */
public final class PrefillChunks {
  /** Positions per pass: at width 2048 and f16 activations, 1 MiB between stages. */
  public static final int DEFAULT_TOKENS = 256;

  private PrefillChunks() {}

  /**
   * Where to cut {@code length} new positions into passes of at most {@code chunk}: offsets
   * {@code 0 = c0 < c1 < ... < cn = length}. The last pass holds the final {@code rows} positions
   * (the ones whose scores are wanted, drafts among them) even when {@code rows > chunk}, and is
   * otherwise the remainder, so every earlier pass is full.
   */
  public static int[] cuts(int length, int rows, int chunk) {
    if (chunk < 1 || length < 1 || rows < 1 || rows > length) {
      throw new IllegalArgumentException("cannot cut " + length + " positions with " + rows + " rows wanted into passes of "
          + chunk);
    }
    int tail = Math.min(length, Math.max(rows, (length - 1) % chunk + 1));
    int head = length - tail;
    int passes = (head + chunk - 1) / chunk + 1;
    int[] cuts = new int[passes + 1];
    for (int i = 1; i < passes; i++) {
      cuts[i] = Math.min(head, i * chunk);
    }
    cuts[passes] = length;
    return cuts;
  }
}
