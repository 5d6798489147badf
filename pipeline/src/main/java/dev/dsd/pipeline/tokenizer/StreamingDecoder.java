package dev.dsd.pipeline.tokenizer;

import java.util.Arrays;

/**
 * Turns a growing list of token ids into text increments. Byte-level BPE can split one character
 * across tokens, so the text of all ids so far is decoded and only the part that ends in complete
 * characters is released; a trailing U+FFFD (an incomplete UTF-8 sequence) is held back.
 */
public final class StreamingDecoder {
  private final Tokenizer tokenizer;
  private int[] ids = new int[64];
  private int n;
  private int emitted; // chars of the decoded text already released

  StreamingDecoder(Tokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** Adds tokens and returns the new complete text (possibly empty). */
  public String push(int... tokens) {
    if (n + tokens.length > ids.length) {
      ids = Arrays.copyOf(ids, Math.max(ids.length * 2, n + tokens.length));
    }
    System.arraycopy(tokens, 0, ids, n, tokens.length);
    n += tokens.length;
    String text = tokenizer.decode(Arrays.copyOf(ids, n));
    int end = text.length();
    while (end > emitted && text.charAt(end - 1) == '\uFFFD') {
      end--;
    }
    if (end <= emitted) {
      return "";
    }
    String out = text.substring(emitted, end);
    emitted = end;
    return out;
  }

  /** Releases whatever is left, incomplete characters included. */
  public String flush() {
    String text = tokenizer.decode(Arrays.copyOf(ids, n));
    String out = text.length() > emitted ? text.substring(emitted) : "";
    emitted = text.length();
    return out;
  }
}
