package dev.dsd.verification.acceptance;

import dev.dsd.verification.importance.TokenImportance;

/**
 * DSD's adaptive verification. LOSSY: the output is no longer exactly the target's. A draft token
 * the lossless rule rejects is kept only where both hold:
 *
 * <ul>
 *   <li>its class is unimportant ({@link TokenImportance}: whitespace, punctuation, keywords and
 *       function words), and</li>
 *   <li>the target itself is unsure there: the token trails the target's most likely token by less
 *       than {@code maxGap} in probability ({@link TargetUncertainty#gap}), which also means the
 *       target's own top-2 margin is below {@code maxGap}; for the argmax itself (which only
 *       sampling can reject) the top-2 margin must be below {@code maxGap}.</li>
 * </ul>
 *
 * Every other decision is the lossless rule's, and {@code maxGap = 0} is exactly lossless.
 *
 * <p><b>Greedy (temperature 0).</b> Drafts are kept while each equals the target's argmax or is
 * relaxable; at the first other draft the argmax follows. The gap is read from softmax at
 * temperature 1 (what {@link TargetScores#distribution} holds for greedy sessions).
 *
 * <p><b>Sampling (temperature &gt; 0).</b> Speculative sampling whose acceptance probability is
 * raised from min(1, p(x)/q(x)) to 1 for relaxable tokens, with p the session's distribution (after
 * temperature and top-p) and the gap read from that p; a rejected draft is corrected from
 * norm(max(0, p - q)) as in the lossless rule, and the random numbers are consumed as there (see
 * {@link SpeculativeSampling}). At one position the output then differs from p by at most the
 * draft's excess mass on relaxable tokens, sum over relaxable x of max(0, q(x) - p(x)), in total
 * variation. A token the target gives no mass (outside top-p) is never kept. Off unless a request
 * asks for it. The relaxation itself is {@link UnsureUnimportant}, which token trees share.
 */
public final class AdaptiveAcceptance implements AcceptanceRule {
  private final UnsureUnimportant relaxation;
  private final double temperature;
  private final double topP;
  private final SpeculativeSampling sampling; // null when greedy

  /**
   * @param maxGap in [0, 1): a rejected unimportant draft is kept when the target's argmax is less
   *     than this much more likely (0: lossless); the node reads the calibrated value from the
   *     model's {@code adaptive-verification.json}
   */
  public AdaptiveAcceptance(TokenImportance importance, double maxGap, double temperature, double topP, long seed) {
    this.relaxation = new UnsureUnimportant(importance, maxGap);
    this.temperature = temperature;
    this.topP = topP;
    this.sampling = temperature > 0 ? new SpeculativeSampling(temperature, topP, seed, relaxation) : null;
  }

  @Override
  public TargetScores scores(float[] logits, int vocab) {
    return new LogitScores(logits, vocab, temperature, topP);
  }

  @Override
  public Verdict decide(int[] draft, double[][] q, TargetScores target) {
    if (sampling != null) {
      return sampling.decide(draft, q, target);
    }
    for (int i = 0; i < draft.length; i++) {
      if (draft[i] != target.argmax(i) && !relaxation.keep(i, draft[i], target)) {
        return new Verdict(i, target.argmax(i));
      }
    }
    if (draft.length == target.rows()) { // a pipelined round: the next round's first row verifies on
      return new Verdict(draft.length, NO_BONUS);
    }
    return new Verdict(draft.length, target.argmax(draft.length));
  }

  /** Drafts kept only because they were relaxable. */
  public long relaxedAcceptances() {
    return relaxation.kept();
  }

  public double maxGap() {
    return relaxation.maxGap();
  }

  @Override
  public boolean lossless() {
    return false;
  }
}
