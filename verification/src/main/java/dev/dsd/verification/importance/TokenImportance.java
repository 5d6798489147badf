package dev.dsd.verification.importance;

import java.util.Set;
import java.util.function.IntFunction;

/**
 * Semantic importance of each token id in [0, 1], from the token's text alone, for adaptive
 * verification (DSD): getting an unimportant token slightly wrong barely changes the meaning.
 *
 * <ul>
 *   <li>whitespace only (spaces, indentation, newlines): {@link Weights#whitespace}</li>
 *   <li>punctuation and operators only ({@code (}, {@code ):}, {@code ,}, {@code ==}): {@link Weights#punctuation}</li>
 *   <li>a Python keyword or an English function word ({@code def}, {@code return}, {@code the}): {@link Weights#keyword}</li>
 *   <li>anything with a digit: {@link Weights#number}</li>
 *   <li>other words and word pieces (identifiers, string content): {@link Weights#identifier}</li>
 * </ul>
 *
 * A token is unimportant when its score is below {@link Weights#threshold}. The text of each id
 * comes from the tokenizer (decoded, so byte-level spellings like 'Ġ' for a space are resolved).
 */
public final class TokenImportance {
  /** Tunable scores per class and the cut between unimportant and important. */
  public record Weights(double whitespace, double punctuation, double keyword, double identifier, double number,
      double threshold) {
    public static final Weights DEFAULT = new Weights(0.0, 0.1, 0.3, 0.9, 1.0, 0.5);
  }

  static final Set<String> KEYWORDS = Set.copyOf(java.util.List.of(
      // Python keywords and very common builtins
      "def", "return", "if", "elif", "else", "for", "while", "in", "is", "not", "and", "or", "import", "from", "as",
      "class", "pass", "break", "continue", "try", "except", "finally", "raise", "with", "yield", "lambda", "None",
      "True", "False", "self", "global", "nonlocal", "del", "assert", "async", "await",
      // English function words
      "the", "a", "an", "of", "to", "and", "or", "in", "on", "at", "by", "for", "with", "from", "is", "are", "was",
      "be", "this", "that", "it", "as", "if", "then", "than", "but", "not", "no")); // the lists overlap

  private final double[] scores;
  private final Weights weights;

  private TokenImportance(double[] scores, Weights weights) {
    this.scores = scores;
    this.weights = weights;
  }

  /** Scores ids {@code 0..vocab-1}, reading each token's text with {@code text}. */
  public static TokenImportance of(int vocab, IntFunction<String> text, Weights w) {
    double[] s = new double[vocab];
    for (int id = 0; id < vocab; id++) {
      s[id] = score(text.apply(id), w);
    }
    return new TokenImportance(s, w);
  }

  static double score(String t, Weights w) {
    String core = t.strip();
    if (core.isEmpty()) {
      return w.whitespace();
    }
    boolean letter = false;
    boolean digit = false;
    for (int i = 0; i < core.length(); i++) {
      char c = core.charAt(i);
      letter |= Character.isLetter(c) || c == '_';
      digit |= Character.isDigit(c);
    }
    if (digit) {
      return w.number();
    }
    if (!letter) {
      return w.punctuation();
    }
    return KEYWORDS.contains(core) ? w.keyword() : w.identifier();
  }

  public double score(int id) {
    return id >= 0 && id < scores.length ? scores[id] : 1.0;
  }

  public boolean unimportant(int id) {
    return score(id) < weights.threshold();
  }
}
