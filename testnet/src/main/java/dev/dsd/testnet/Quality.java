package dev.dsd.testnet;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * What a benchmark reports about the text besides its speed: repetition (distinct 4-grams) for every
 * mode, and for a lossy mode under greedy decoding how far it strays from the lossless output of
 * the same prompt (first divergence, edit distance). Lower NLL under the target says nothing about
 * the quality of a lossy rule's text; these do.
 */
public final class Quality {
  private Quality() {}

  /** {@code r} with the quality columns filled from its outputs and the lossless ones (null when absent). */
  static PipelineBench.Row annotate(PipelineBench.Row r, int[][] outputs, int[][] lossless) {
    double distinct = 0;
    for (int[] o : outputs) {
      distinct += distinct4(o);
    }
    double divergence = Double.NaN;
    double edit = Double.NaN;
    if (lossless != null && r.sampling().equals(PipelineBench.Sampling.GREEDY.name())) {
      double[] first = new double[outputs.length];
      edit = 0;
      for (int i = 0; i < outputs.length; i++) {
        first[i] = firstDivergence(outputs[i], lossless[i]);
        edit += editDistance(outputs[i], lossless[i]);
      }
      divergence = PipelineBench.median(first);
      edit /= outputs.length;
    }
    return new PipelineBench.Row(r.latencyMs(), r.sampling(), r.mode(), r.prompts(), r.tokens(), r.seconds(),
        r.tokensPerSecond(), r.medianPromptTokensPerSecond(), r.medianFirstTokenMs(), r.acceptance(),
        r.novelAcceptance(), r.novelRoundShare(), r.roundsPerToken(), r.bytesPerToken(), r.outputNll(),
        distinct / outputs.length, divergence, edit);
  }

  /** Distinct 4-grams over all 4-grams of the token ids; 1 for outputs too short to have any. */
  public static double distinct4(int[] ids) {
    return distinctN(ids, 4);
  }

  /** Distinct n-grams over all n-grams of the token ids; 1 for outputs too short to have any. */
  public static double distinctN(int[] ids, int n) {
    if (n < 1) {
      throw new IllegalArgumentException("n-grams need n >= 1, got " + n);
    }
    if (ids.length < n) {
      return 1;
    }
    Set<String> grams = new HashSet<>();
    for (int i = 0; i + n <= ids.length; i++) {
      grams.add(Arrays.toString(Arrays.copyOfRange(ids, i, i + n)));
    }
    return (double) grams.size() / (ids.length - n + 1);
  }

  /** The first index where the two differ; the shorter length when one is a prefix of the other. */
  public static int firstDivergence(int[] a, int[] b) {
    int n = Math.min(a.length, b.length);
    for (int i = 0; i < n; i++) {
      if (a[i] != b[i]) {
        return i;
      }
    }
    return n;
  }

  /** Levenshtein distance over token ids. */
  public static int editDistance(int[] a, int[] b) {
    int[] prev = new int[b.length + 1];
    int[] cur = new int[b.length + 1];
    for (int j = 0; j <= b.length; j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length; i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length; j++) {
        cur[j] = Math.min(Math.min(cur[j - 1], prev[j]) + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length];
  }
}
