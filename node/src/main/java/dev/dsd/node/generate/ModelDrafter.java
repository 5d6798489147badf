package dev.dsd.node.generate;

import dev.dsd.pipeline.runtime.BatchSession;
import dev.dsd.pipeline.runtime.PassCombiner;
import dev.dsd.verification.processing.Penalties;
import dev.dsd.verification.processing.PenaltyState;
import dev.dsd.verification.sampling.Distributions;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Proposes draft tokens with a small model run whole in this process. Its cache always holds the
 * accepted context except the last token; {@link #propose} feeds what the cache lacks plus k-1
 * drafts, and {@link #accepted} rolls it back to what the target kept. With penalties it applies the
 * request's penalties to its own logits over the same history as the target (earlier drafts of the
 * round included): not needed for exactness, but a draft that proposes tokens the penalized target
 * would never pick gets rejected round after round.
 *
 * <p>Its steps go through the draft model's {@link PassCombiner}: the steps of generations drafting
 * at the same time share ONNX Runtime calls, and a generation drafting alone runs its own.
 */
final class ModelDrafter implements Drafter {
  private final PassCombiner passes;
  private final BatchSession session;
  private final double temperature;
  private final double topP;
  private final SplittableRandom random;
  private final int vocab;
  private final int usable;
  private int[] pending; // accepted tokens not yet in the cache (the last one always)
  private double[][] lastDistributions;
  private final Penalties penalties;
  private final int capacity;
  private PenaltyState history; // null without penalties

  /** {@code capacity}: positions the generation may reach (prompt, output and one window of drafts). */
  ModelDrafter(PassCombiner passes, BatchSession session, double temperature, double topP, long seed, int usable,
      Penalties penalties, int capacity) {
    this.penalties = penalties;
    this.capacity = capacity;
    this.usable = usable;
    this.passes = passes;
    this.session = session;
    this.temperature = temperature;
    this.topP = topP;
    this.random = new SplittableRandom(seed ^ 0x5DEECE66DL);
    this.vocab = passes.runner().config().vocabSize();
  }

  /** Caches all but the prompt's last token. */
  @Override
  public void start(int[] prompt) {
    if (penalties.active()) {
      history = new PenaltyState(penalties, prompt.length, vocab, Math.max(capacity, prompt.length));
      for (int t : prompt) {
        history.append(t);
      }
    }
    if (prompt.length > 1) { // in passes: a long prompt's logits would be one giant array
      int[] cuts = PrefillChunks.cuts(prompt.length - 1, 1, PrefillChunks.DEFAULT_TOKENS);
      for (int i = 0; i + 1 < cuts.length; i++) {
        passes.forward(session, Arrays.copyOfRange(prompt, cuts[i], cuts[i + 1]));
      }
    }
    pending = new int[] {prompt[prompt.length - 1]};
  }

  /** k draft tokens continuing the accepted context; their distributions in {@link #lastDistributions}. */
  @Override
  public int[] propose(int k) {
    int[] out = new int[k];
    lastDistributions = new double[k][];
    float[] logits = passes.forward(session, pending);
    VocabMask.apply(logits, vocab, usable);
    int row = (pending.length - 1) * vocab;
    int context = history == null ? 0 : history.size();
    for (int i = 0; i < k; i++) {
      if (history != null) {
        history.apply(logits, row);
      }
      if (temperature == 0) {
        out[i] = Distributions.argmax(logits, row, vocab);
      } else {
        double[] q = Distributions.topP(Distributions.softmax(logits, row, vocab, temperature), topP);
        lastDistributions[i] = q;
        out[i] = Distributions.draw(q, random.nextDouble());
      }
      if (history != null && i + 1 < k) {
        history.append(out[i]);
      }
      if (i + 1 < k) {
        logits = passes.forward(session, new int[] {out[i]});
        VocabMask.apply(logits, vocab, usable);
        row = 0;
      }
    }
    if (temperature == 0) {
      lastDistributions = null;
    }
    if (history != null) {
      history.truncate(context); // drafts enter the history when the target accepts them
    }
    return out;
  }

  /**
   * The target kept {@code n} of the k drafts and chose {@code next}. {@code contextBefore} is the
   * accepted length before this round (the cache then held contextBefore - 1 tokens).
   */
  @Override
  public void accepted(int contextBefore, int[] drafts, int n, int next) {
    if (history != null) {
      history.truncate(contextBefore);
      for (int i = 0; i < n; i++) {
        history.append(drafts[i]);
      }
      history.append(next);
    }
    int k = drafts.length;
    if (k == 0) { // a round without drafts: the cache is unchanged and one more token is pending
      pending = Arrays.copyOf(pending, pending.length + 1);
      pending[pending.length - 1] = next;
      return;
    }
    // cache holds context + drafts[0..k-2]; keep context + drafts[0..n-1]
    session.truncate(Math.min(contextBefore + n, contextBefore + k - 1));
    pending = n == k ? new int[] {drafts[k - 1], next} : new int[] {next};
  }

  /** The cache already holds the context and all drafts but the last, which becomes the pending token. */
  @Override
  public void assume(int contextBefore, int[] drafts) {
    if (history != null) {
      history.truncate(contextBefore);
      for (int d : drafts) {
        history.append(d);
      }
    }
    pending = new int[] {drafts[drafts.length - 1]};
  }

  @Override
  public double[][] lastDistributions() {
    return lastDistributions;
  }

  @Override
  public void close() {
    session.close();
  }
}
