package dev.dsd.verification.window;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A learned model of how far a round's drafts survive verification, for the window controller.
 *
 * <p>The analytic controller assumes each draft is accepted independently at one rate a, so a
 * window of k yields (1 - a^(k+1)) / (1 - a) tokens. Measured traces say otherwise: once the first
 * drafts of a round stand, the next one is more likely to (the draft has locked onto text it
 * knows, e.g. a repeated identifier or a closing bracket), and a round right after a fully accepted
 * one runs long more often than the average says. This model keeps the analytic controller's cost
 * side and replaces only that yield: a logistic hazard
 *
 * <pre>
 *   P(draft j accepted | drafts 1..j-1 accepted) = sigmoid(w . x(state, j))
 *   E[tokens](k) = 1 + sum_{j=1..k} prod_{i<=j} P(draft i accepted | ...)
 * </pre>
 *
 * over features of the window's running state ({@link AcceptanceState#features}). The weights are
 * trained by {@code dsd sim train-window} on acceptance traces of training prompts and shipped as
 * {@code acceptance-hazard.txt}; the file names its features, so a model trained for another
 * feature set is refused rather than misread.
 *
 * <pre>
 * format dsd-acceptance-hazard/1
 * features bias logit_a last_frac last_full log_j logit_a_log_j last_full_log_j
 * weights 0.63 0.63 0.26 0.48 0.49 -0.21 0.30
 * # any other line: provenance (how it was trained), ignored
 * </pre>
 */
public final class AcceptanceHazard {
  public static final String FORMAT = "dsd-acceptance-hazard/1";
  /** The model shipped with dsd, used by {@code --spec learned}. */
  public static final String SHIPPED_RESOURCE = "acceptance-hazard.txt";
  private static final int MAX_FILE_CHARS = 64 * 1024;

  private final double[] weights;
  private final Map<String, String> provenance;

  public AcceptanceHazard(double[] weights, Map<String, String> provenance) {
    if (weights.length != AcceptanceState.FEATURES.size()) {
      throw new IllegalArgumentException("a hazard model needs " + AcceptanceState.FEATURES.size() + " weights, got "
          + weights.length);
    }
    for (double w : weights) {
      if (!Double.isFinite(w)) {
        throw new IllegalArgumentException("hazard weights must be finite: " + Arrays.toString(weights));
      }
    }
    this.weights = weights.clone();
    this.provenance = Map.copyOf(provenance);
  }

  /** The shipped model (trained on traces of training prompts; see the file for how). */
  public static AcceptanceHazard shipped() {
    try (InputStream in = AcceptanceHazard.class.getResourceAsStream(SHIPPED_RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException("the shipped window model " + SHIPPED_RESOURCE + " is missing from the jar");
      }
      return parse(new String(in.readNBytes(MAX_FILE_CHARS + 1), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static AcceptanceHazard parse(String text) {
    if (text.length() > MAX_FILE_CHARS) {
      throw new IllegalArgumentException("a hazard model file holds at most " + MAX_FILE_CHARS + " characters");
    }
    String format = null;
    String features = null;
    double[] w = null;
    Map<String, String> other = new LinkedHashMap<>();
    for (String line : text.split("\n")) {
      String l = line.strip();
      if (l.isEmpty() || l.startsWith("#")) {
        continue;
      }
      int sp = l.indexOf(' ');
      String key = sp < 0 ? l : l.substring(0, sp);
      String value = sp < 0 ? "" : l.substring(sp + 1).strip();
      switch (key) {
        case "format" -> format = value;
        case "features" -> features = value;
        case "weights" -> {
          try {
            w = Arrays.stream(value.split("\\s+")).mapToDouble(Double::parseDouble).toArray();
          } catch (NumberFormatException e) {
            throw new IllegalArgumentException("hazard weights are not numbers: " + value);
          }
        }
        default -> other.put(key, value);
      }
    }
    if (!FORMAT.equals(format)) {
      throw new IllegalArgumentException("not a " + FORMAT + " file (format " + format + ")");
    }
    String expected = String.join(" ", AcceptanceState.FEATURES);
    if (!expected.equals(features)) {
      throw new IllegalArgumentException("the model was trained on features [" + features + "], this dsd computes ["
          + expected + "]");
    }
    if (w == null) {
      throw new IllegalArgumentException("the hazard model has no weights line");
    }
    return new AcceptanceHazard(w, other);
  }

  /** The file {@link #parse} reads back, with {@code provenance} lines kept. */
  public String format() {
    StringBuilder b = new StringBuilder("format ").append(FORMAT).append('\n');
    b.append("features ").append(String.join(" ", AcceptanceState.FEATURES)).append('\n');
    b.append("weights");
    for (double v : weights) {
      b.append(' ').append(v);
    }
    b.append('\n');
    provenance.forEach((k, v) -> b.append(k).append(' ').append(v).append('\n'));
    return b.toString();
  }

  public double[] weights() {
    return weights.clone();
  }

  /** P(draft j accepted | the drafts before it accepted), given the window's state. */
  public double continueProbability(AcceptanceState state, int j) {
    double[] x = state.features(j);
    double z = 0;
    for (int i = 0; i < x.length; i++) {
      z += weights[i] * x[i];
    }
    return 1 / (1 + Math.exp(-z));
  }

  /** Expected tokens a round of window {@code k} yields: accepted drafts plus the target's own token. */
  public double expectedTokens(AcceptanceState state, int k) {
    double e = 1;
    double survive = 1;
    for (int j = 1; j <= k; j++) {
      survive *= continueProbability(state, j);
      e += survive;
    }
    return e;
  }
}
