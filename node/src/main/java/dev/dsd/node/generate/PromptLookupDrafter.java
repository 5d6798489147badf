package dev.dsd.node.generate;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Drafts without a model, by prompt lookup (llama.cpp's lookup decoding, "prompt lookup decoding"
 * in HF transformers): generated text often repeats the prompt or itself (code edits, quotations,
 * lists), so the tokens that followed the latest earlier occurrence of the context's last n-gram
 * are a free guess at what comes next. Longer n-grams are tried first because they pin down the
 * place being repeated better than a single token does.
 *
 * <p>For each n-gram length it keeps, per context position, where the n-gram ending there last
 * ended before, so a proposal costs one array read per length however long the context, and
 * appending or rolling back a token costs one map update per length.
 */
public final class PromptLookupDrafter implements Drafter {
  static final int DEFAULT_MIN_NGRAM = 1;
  static final int DEFAULT_MAX_NGRAM = 3;

  private final int minNgram;
  private final int maxNgram;
  /** Each n-gram (all lengths in one map: different lengths never compare equal) to where it last ended. */
  private final Map<NGram, Integer> lastEnd = new HashMap<>();
  private int[] tokens = new int[0];
  /**
   * {@code earlierEnd[n - minNgram][end]}: where the n-gram ending at {@code end} ended before that,
   * or -1. Kept per position rather than looked up so that rollback can restore {@link #lastEnd}.
   */
  private int[][] earlierEnd;
  private int size;

  public PromptLookupDrafter() {
    this(DEFAULT_MIN_NGRAM, DEFAULT_MAX_NGRAM);
  }

  public PromptLookupDrafter(int minNgram, int maxNgram) {
    if (minNgram < 1 || maxNgram < minNgram) {
      throw new IllegalArgumentException("n-gram lengths must satisfy 1 <= min <= max, got " + minNgram + ".." + maxNgram);
    }
    this.minNgram = minNgram;
    this.maxNgram = maxNgram;
    this.earlierEnd = new int[maxNgram - minNgram + 1][0];
  }

  @Override
  public void start(int[] prompt) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("empty prompt");
    }
    lastEnd.clear();
    size = 0;
    reserve(prompt.length);
    for (int t : prompt) {
      append(t);
    }
  }

  /**
   * The tokens after the most recent earlier occurrence of the longest matching suffix n-gram: at
   * most {@code k}, fewer when that occurrence is close to the end, none when no suffix recurs.
   */
  @Override
  public int[] propose(int k) {
    if (size == 0) {
      throw new IllegalStateException("propose before start");
    }
    if (k < 0) {
      throw new IllegalArgumentException("negative draft count " + k);
    }
    int last = size - 1;
    for (int n = maxNgram; n >= minNgram && k > 0; n--) {
      int match = earlierEnd[n - minNgram][last];
      if (match >= 0) {
        int from = match + 1; // match < last, so at least one token follows it
        return Arrays.copyOfRange(tokens, from, from + Math.min(k, size - from));
      }
    }
    return new int[0];
  }

  /**
   * The continuations after up to {@code maxBranches} earlier occurrences of the longest suffix
   * n-gram that recurs, most recent first, each at most {@code maxLen} tokens (a token tree's
   * branches: where the text repeated itself several times, it may go on as any of them did).
   * Empty when no suffix recurs.
   */
  public int[][] continuations(int maxBranches, int maxLen) {
    if (size == 0) {
      throw new IllegalStateException("continuations before start");
    }
    int last = size - 1;
    for (int n = maxNgram; n >= minNgram; n--) {
      int match = earlierEnd[n - minNgram][last];
      if (match < 0) {
        continue;
      }
      java.util.List<int[]> out = new java.util.ArrayList<>();
      // the n-gram ending at an occurrence is the same n-gram, so its own earlier end is the one before
      for (; match >= 0 && out.size() < maxBranches && maxLen > 0; match = earlierEnd[n - minNgram][match]) {
        out.add(Arrays.copyOfRange(tokens, match + 1, Math.min(size, match + 1 + maxLen)));
      }
      return out.toArray(new int[0][]);
    }
    return new int[0][];
  }

  /** Tokens of context held (prompt and accepted output). */
  public int length() {
    return size;
  }

  @Override
  public double[][] lastDistributions() {
    return null;
  }

  /**
   * Drafts beyond the kept ones never entered the context, so this only has to append; a {@code
   * contextBefore} shorter than the context held rewinds it there first.
   */
  @Override
  public void accepted(int contextBefore, int[] drafts, int n, int next) {
    if (contextBefore < 0 || contextBefore > size) {
      throw new IllegalArgumentException("context of " + contextBefore + " tokens, but " + size + " are held");
    }
    if (n < 0 || n > drafts.length) {
      throw new IllegalArgumentException(n + " of " + drafts.length + " drafts accepted");
    }
    truncate(contextBefore);
    reserve(size + n + 1);
    for (int i = 0; i < n; i++) {
      append(drafts[i]);
    }
    append(next);
  }

  /** Drops the index, which for a long generation is the bulk of the memory held. */
  @Override
  public void close() {
    lastEnd.clear();
    tokens = new int[0];
    earlierEnd = new int[earlierEnd.length][0];
    size = 0;
  }

  private void append(int token) {
    tokens[size] = token;
    for (int n = minNgram; n <= maxNgram; n++) {
      int earlier = -1;
      if (size + 1 >= n) {
        Integer before = lastEnd.put(new NGram(tokens, size + 1 - n, n), size);
        earlier = before == null ? -1 : before;
      }
      earlierEnd[n - minNgram][size] = earlier;
    }
    size++;
  }

  /** Undoes appends newest first, so each n-gram's entry returns to what it was before them. */
  private void truncate(int length) {
    while (size > length) {
      int end = --size;
      for (int n = minNgram; n <= maxNgram && end + 1 >= n; n++) {
        NGram g = new NGram(tokens, end + 1 - n, n);
        int earlier = earlierEnd[n - minNgram][end];
        if (earlier < 0) {
          lastEnd.remove(g);
        } else {
          lastEnd.put(g, earlier);
        }
      }
    }
  }

  private void reserve(int capacity) {
    if (capacity > tokens.length) {
      int grown = Math.max(capacity, tokens.length * 2);
      tokens = Arrays.copyOf(tokens, grown);
      for (int i = 0; i < earlierEnd.length; i++) {
        earlierEnd[i] = Arrays.copyOf(earlierEnd[i], grown);
      }
    }
  }

  /** A copy of n token ids: the context array is reused after rollback, so keys must not alias it. */
  private static final class NGram {
    private final int[] ids;
    private final int hash;

    NGram(int[] tokens, int from, int n) {
      this.ids = Arrays.copyOfRange(tokens, from, from + n);
      this.hash = Arrays.hashCode(ids);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof NGram g && hash == g.hash && Arrays.equals(ids, g.ids);
    }

    @Override
    public int hashCode() {
      return hash;
    }
  }
}
