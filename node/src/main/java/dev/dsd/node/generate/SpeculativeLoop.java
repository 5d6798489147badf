package dev.dsd.node.generate;

import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.window.WindowPolicy;
import java.util.Arrays;
import java.util.Set;

/**
 * One generation by speculative decoding, independent of where the target runs. Each round the
 * drafter proposes up to k tokens and the target checks {@code [last accepted, d1..dk]} in one
 * pass; the rule decides how many drafts stand and which token follows them. Rejected positions are
 * not removed by an extra call: the next round's {@code keep} tells the target to drop them, so a
 * pipeline carries the rollback on the message it sends anyway. The prompt goes with the first
 * round. Without a drafter (or with k = 0) every round yields exactly one token.
 */
public final class SpeculativeLoop {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(SpeculativeLoop.class);
  private final TokenOutput output;

  public SpeculativeLoop(Tokenizer tokenizer, Set<Integer> eos) {
    this.output = new TokenOutput(tokenizer, eos);
  }

  /** How the last round went, for logs and the adaptive window. */
  public interface RoundListener {
    void round(int k, int accepted, long draftNanos, long verifyNanos);

    RoundListener NONE = (k, a, d, v) -> { };
  }

  /**
   * @param capacity positions the target's caches hold (prompt + max_tokens + the largest window)
   */
  public GenerationResult run(GenerationRequest req, int[] prompt, TargetPass target, Drafter drafter,
      AcceptanceRule rule, WindowPolicy window, int capacity, TokenSink sink, RoundListener listener) {
    return run(req, prompt, target, drafter, rule, window, capacity, sink, listener, System.nanoTime());
  }

  /**
   * @param t0 when the generation began ({@link System#nanoTime}): the result's seconds and time to
   *     first token count from it, so a caller that set up a session first includes that time
   */
  public GenerationResult run(GenerationRequest req, int[] prompt, TargetPass target, Drafter drafter,
      AcceptanceRule rule, WindowPolicy window, int capacity, TokenSink sink, RoundListener listener, long t0) {
    TokenOutput.Run out = output.start(req, sink, t0);
    int rounds = 0;
    long drafted = 0;
    long acceptedTotal = 0;
    if (drafter != null) {
      try {
        drafter.start(prompt);
      } catch (RuntimeException e) {
        drafter = DraftSource.dropLost(drafter, e);
      }
    }
    int[] pendingInput = prompt; // positions the target has not seen yet, the last accepted token at the end
    int keep = 0;
    while (!out.done()) {
      int context = keep + pendingInput.length; // accepted tokens so far
      int room = Math.min(req.maxTokens() - out.count() - 1, capacity - context);
      int k = drafter == null ? 0 : Math.max(0, Math.min(window.next(), room));
      long t1 = System.nanoTime();
      int[] drafts;
      try {
        drafts = k == 0 ? new int[0] : drafter.propose(k);
      } catch (RuntimeException e) {
        drafter = DraftSource.dropLost(drafter, e);
        drafts = new int[0];
      }
      long t2 = System.nanoTime();
      int[] input = Arrays.copyOf(pendingInput, pendingInput.length + drafts.length);
      System.arraycopy(drafts, 0, input, pendingInput.length, drafts.length);
      TargetScores scores = target.run(keep, input, drafts, drafts.length + 1);
      double[][] q = drafts.length == 0 ? null : drafter.lastDistributions();
      AcceptanceRule.Verdict v = rule.decide(drafts, q, scores);
      long t3 = System.nanoTime();
      long compute = target.lastComputeNanos();
      window.observe(drafts.length, v.accepted(), t2 - t1, t3 - t2, compute < 0 ? 0 : Math.max(0, t3 - t2 - compute));
      listener.round(drafts.length, v.accepted(), t2 - t1, t3 - t2);
      log.debug("round={} k={} drafted={} accepted={} draftUs={} verifyUs={}", rounds + 1, k, drafts.length,
          v.accepted(), (t2 - t1) / 1000, (t3 - t2) / 1000);
      rounds++;
      drafted += drafts.length;
      acceptedTotal += v.accepted();
      if (drafter != null) {
        try {
          drafter.accepted(context, drafts, v.accepted(), v.next());
        } catch (RuntimeException e) {
          drafter = DraftSource.dropLost(drafter, e);
        }
      }
      keep = context + v.accepted();
      pendingInput = new int[] {v.next()};
      int[] produced = Arrays.copyOf(drafts, v.accepted() + 1);
      produced[v.accepted()] = v.next();
      for (int j = 0; j < produced.length; j++) { // row j of this round is the distribution token j was chosen from
        if (!out.emit(produced[j], scores, j, req)) {
          break;
        }
      }
    }
    return out.finish(prompt, rounds, drafted, acceptedTotal, target);
  }
}
