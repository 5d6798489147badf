package dev.dsd.verification.processing;

import java.util.Arrays;

/**
 * The token history of one generation as its penalties need it, kept wherever the target's logits
 * become a distribution: in the entry for a local target, on the last pipeline stage otherwise
 * (the summary it sends is already the processed distribution, so the entry's acceptance rules,
 * samplers and logprobs never see raw logits). Counts follow the KV cache: a round that keeps
 * {@code keep} positions rolls the history back to them, exactly as rejected drafts are dropped.
 *
 * <p>Verification processes each of a round's rows with the history up to that row's position,
 * earlier draft tokens of the same round included. This is what makes greedy speculation equal to
 * greedy decoding with the same penalties, and speculative sampling sample the penalized target:
 * the target's distribution at draft position i is the one plain decoding would have seen had it
 * produced drafts 1..i-1 itself.
 */
public final class PenaltyState {
  private final Penalties penalties;
  private final int promptTokens;
  private final int vocab;
  private final int capacity;
  private final int[] inContext; // per id: occurrences in prompt + output held
  private final int[] inOutput;  // per id: occurrences at positions >= promptTokens
  private int[] tokens = new int[64];
  private int size;

  /**
   * @param promptTokens positions before this are the prompt (counted by the repetition penalty only)
   * @param capacity most positions the history may hold: the session's cache size
   */
  public PenaltyState(Penalties penalties, int promptTokens, int vocab, int capacity) {
    if (promptTokens < 0 || vocab < 1 || capacity < 1) {
      throw new IllegalArgumentException("prompt of " + promptTokens + " tokens, vocabulary " + vocab + ", capacity "
          + capacity);
    }
    this.penalties = penalties;
    this.promptTokens = promptTokens;
    this.vocab = vocab;
    this.capacity = capacity;
    this.inContext = new int[vocab];
    this.inOutput = new int[vocab];
  }

  public int size() {
    return size;
  }

  /**
   * A round of a target pass: drops history from {@code keep} on, appends {@code tokens} (the
   * round's positions) and processes in place the last {@code rows} rows of {@code logits} (rows of
   * {@code stride} floats, {@code rows * stride} long), row i with the history up to and including
   * the position it predicts from.
   */
  public void process(int keep, int[] tokens, float[] logits, int rows, int stride) {
    if (keep < 0 || keep > size) {
      throw new IllegalArgumentException("keep " + keep + " is beyond the " + size + " tokens of history");
    }
    if (rows < 1 || rows > tokens.length || logits.length != rows * stride || stride < vocab) {
      throw new IllegalArgumentException(rows + " rows of " + stride + " logits do not fit " + tokens.length
          + " positions (" + logits.length + " logits)");
    }
    if ((long) keep + tokens.length > capacity) {
      throw new IllegalArgumentException("history of " + keep + " + " + tokens.length + " tokens exceeds its capacity "
          + capacity);
    }
    truncate(keep);
    int firstRow = tokens.length - rows; // tokens[firstRow] is the position row 0 predicts from
    for (int i = 0; i <= firstRow; i++) {
      append(tokens[i]);
    }
    for (int r = 0; r < rows; r++) {
      if (r > 0) {
        append(tokens[firstRow + r]);
      }
      apply(logits, r * stride);
    }
  }

  /** Applies the penalties for the current history to one row starting at {@code offset}. */
  public void apply(float[] logits, int offset) {
    for (int v = 0; v < vocab; v++) {
      if (inContext[v] > 0) {
        logits[offset + v] = penalties.apply(logits[offset + v], inContext[v], inOutput[v]);
      }
    }
  }

  public void append(int token) {
    if (token < 0 || token >= vocab) {
      throw new IllegalArgumentException("token " + token + " is outside the vocabulary of " + vocab);
    }
    if (size == capacity) {
      throw new IllegalArgumentException("history is full at " + capacity + " tokens");
    }
    if (size == tokens.length) {
      tokens = Arrays.copyOf(tokens, Math.min(capacity, tokens.length * 2));
    }
    inContext[token]++;
    if (size >= promptTokens) {
      inOutput[token]++;
    }
    tokens[size++] = token;
  }

  public void truncate(int length) {
    while (size > length) {
      int t = tokens[--size];
      inContext[t]--;
      if (size >= promptTokens) {
        inOutput[t]--;
      }
    }
  }
}
