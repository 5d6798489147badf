package dev.dsd.node.generate;

import dev.dsd.node.pipeline.Timeline;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.TargetScores;
import dev.dsd.verification.window.PipelineController;
import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * Pipelined speculative decoding: up to D rounds of one generation in flight along the pipeline.
 *
 * <p>The drafter drafts one stream of tokens past the accepted context, as if every draft will be
 * accepted. A round sends the next positions of that stream; its rows verify the token after each
 * position, so its last row verifies the first token of the next round (the "lookahead"), which is
 * already drafted when the round goes. The next round then starts right there (keep = the position
 * after this round's) without waiting. Verdicts come back in order; each is the ordinary rule over
 * the round's drafts, and since every earlier draft was accepted when it is decided, the target's
 * scores it reads are conditioned on the accepted prefix, exactly as in a synchronous round:
 * greedy output is the target's own, and speculative sampling's residual draw stays exact. When a
 * verdict rejects (or ends with a bonus token), the rounds in flight were built on a token that did
 * not stand: they are cancelled (their answers never read), the cache rolls back, and the corrected
 * continuation goes at once. A round sent when the drafter has nothing more, or at the end of the
 * output, carries no lookahead (a bonus row instead), and nothing follows it until its verdict.
 *
 * <p>With D = 1 this is synchronous speculation. {@link PipelineController} chooses k and D.
 */
public final class PipelinedLoop {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(PipelinedLoop.class);
  private final TokenOutput output;

  /** How the generation's tokens reach the client (shared with the synchronous loop's behaviour). */
  PipelinedLoop(TokenOutput output) {
    this.output = output;
  }

  public PipelinedLoop(dev.dsd.pipeline.tokenizer.Tokenizer tokenizer, java.util.Set<Integer> eos) {
    this(new TokenOutput(tokenizer, eos));
  }

  /** A round in flight: positions [start, end), the drafts its rows verify (at verifyFrom..), their distributions. */
  private record Flight(long handle, int start, int end, int verifyFrom, int[] drafts, double[][] q, long sentAt,
      long draftNanos) {
    boolean closing() {
      return drafts.length < end - verifyFrom + 1;
    }
  }

  /**
   * @param fixed the window and depth to use throughout, or null to let {@code controller} choose
   * @param capacity positions the target's caches hold
   * @param t0 when the generation began (setup included in its time)
   */
  public GenerationResult run(GenerationRequest req, int[] prompt, PipelinedTarget target, Drafter drafter,
      AcceptanceRule rule, PipelineController controller, PipelineController.Choice fixed, int capacity,
      TokenSink sink, SpeculativeLoop.RoundListener listener, long t0) {
    TokenOutput.Run out = output.start(req, sink, t0);
    int lastPos = Math.min(prompt.length + req.maxTokens() - 1, capacity); // last position an output token takes
    int[] ctx = Arrays.copyOf(prompt, prompt.length + req.maxTokens() + 1); // accepted tokens
    int accepted = prompt.length;
    int sent = 0; // positions sent to the target (in its caches or in flight)
    int[] stream = new int[16]; // drafted tokens at positions accepted, accepted + 1, ...
    double[][] streamQ = new double[16][];
    int streamSize = 0;
    ArrayDeque<Flight> flights = new ArrayDeque<>();
    long rounds = 0;
    long drafted = 0;
    long acceptedTotal = 0;
    long cancelled = 0;
    int deepest = 0;
    if (drafter != null) {
      try {
        drafter.start(prompt);
      } catch (RuntimeException e) {
        drafter = DraftSource.dropLost(drafter, e);
      }
    }
    generation:
    while (!out.done()) {
      PipelineController.Choice choice = fixed != null ? fixed : controller.next();
      int k = drafter == null ? 0 : choice.k();
      // fill the pipeline: rounds go one behind another until D are in flight
      while (flights.size() < Math.max(1, choice.depth()) && (flights.isEmpty() || !flights.peekLast().closing())) {
        int a = sent;
        int verifyFrom = Math.max(accepted, a + 1);
        int b = Math.min(verifyFrom + Math.max(k, 1) - 1, lastPos);
        if (b <= a) {
          break; // the output ends within the rounds in flight
        }
        long d0 = System.nanoTime();
        int streamEnd = accepted + streamSize;
        if (k > 0 && b + 1 > streamEnd) {
          int[] more;
          try {
            more = drafter.propose(b + 1 - streamEnd);
          } catch (RuntimeException e) {
            drafter = DraftSource.dropLost(drafter, e);
            k = 0;
            more = new int[0];
          }
          if (more.length > 0) {
            double[][] q = drafter.lastDistributions();
            drafter.assume(streamEnd, more);
            if (streamSize + more.length > stream.length) {
              stream = Arrays.copyOf(stream, Math.max(2 * stream.length, streamSize + more.length));
              streamQ = Arrays.copyOf(streamQ, stream.length);
            }
            for (int i = 0; i < more.length; i++) {
              stream[streamSize] = more[i];
              streamQ[streamSize++] = q == null ? null : q[i];
            }
            streamEnd += more.length;
          }
        }
        long draftNanos = System.nanoTime() - d0;
        boolean closing = b + 1 > streamEnd || k == 0;
        if (closing) {
          b = Math.min(b, Math.max(streamEnd, accepted)); // every drafted token goes, a bonus row after them
          if (b <= a) {
            break; // nothing drafted past the rounds in flight: wait for their verdicts
          }
        }
        int nDrafts = closing ? b - verifyFrom : b - verifyFrom + 1;
        int[] tokens = new int[b - a];
        for (int p = a; p < b; p++) {
          tokens[p - a] = p < accepted ? ctx[p] : stream[p - accepted];
        }
        int[] drafts = Arrays.copyOfRange(stream, verifyFrom - accepted, verifyFrom - accepted + nDrafts);
        double[][] q = null;
        if (nDrafts > 0 && streamQ[verifyFrom - accepted] != null) {
          q = Arrays.copyOfRange(streamQ, verifyFrom - accepted, verifyFrom - accepted + nDrafts);
        }
        if (Timeline.on()) {
          Timeline.event(null, "next", "entry", "drafted", "positions=[" + a + "," + b + ") drafts=" + nDrafts
              + " draftMs=" + String.format("%.2f", draftNanos / 1e6) + " inFlight=" + flights.size());
        }
        long h = target.send(a, tokens, drafts, b - verifyFrom + 1);
        flights.add(new Flight(h, a, b, verifyFrom, drafts, q, System.nanoTime(), draftNanos));
        sent = b;
        deepest = Math.max(deepest, flights.size());
      }
      Flight f = flights.poll();
      if (f == null) {
        break; // nothing could be sent: the output is complete
      }
      TargetScores scores = target.await(f.handle());
      long now = System.nanoTime();
      long arrived = target.lastAnswerNanos();
      // the round's own trip: its answer may have waited while this loop drafted the next rounds
      long wall = (arrived > f.sentAt() && arrived <= now ? arrived : now) - f.sentAt();
      AcceptanceRule.Verdict v = rule.decide(f.drafts(), f.q(), scores);
      int n = v.accepted();
      boolean bonusless = v.next() == AcceptanceRule.NO_BONUS;
      rounds++;
      drafted += f.drafts().length;
      acceptedTotal += n;
      long compute = target.lastComputeNanos();
      long queue = target.lastQueueNanos();
      if (controller != null) {
        controller.observe(f.drafts().length, n, !bonusless && n < f.drafts().length, f.draftNanos(), compute,
            target.lastBottleneckNanos(), compute < 0 ? -1 : Math.max(0, wall - compute - Math.max(0, queue)),
            target.lastBatchRows());
      }
      // listeners count a round as its accepted drafts plus one token of the target's: a round whose
      // last draft stood is, for them, one draft fewer and the target's own token
      listener.round(bonusless ? f.drafts().length - 1 : f.drafts().length, bonusless ? n - 1 : n, f.draftNanos(),
          wall);
      log.debug("pipelined verdict handle={} positions=[{},{}) drafts={} accepted={} next={} inFlight={}", f.handle(),
          f.start(), f.end(), f.drafts().length, n, v.next(), flights.size());
      if (Timeline.on()) {
        Timeline.event(null, "h" + f.handle(), "entry", "verdict", "positions=[" + f.start() + "," + f.end()
            + ") accepted=" + n + "/" + f.drafts().length + " inFlight=" + flights.size());
      }
      int before = accepted;
      for (int j = 0; j < n; j++) {
        ctx[accepted++] = f.drafts()[j];
      }
      if (bonusless) {
        streamSize = shift(stream, streamQ, streamSize, n);
      } else {
        ctx[accepted++] = v.next();
        if (!flights.isEmpty()) {
          cancelled += flights.size();
          target.cancel(f.handle(), accepted - 1);
          flights.clear();
        }
        if (drafter != null) {
          try {
            drafter.accepted(before, Arrays.copyOf(stream, streamSize), n, v.next());
          } catch (RuntimeException e) {
            drafter = DraftSource.dropLost(drafter, e);
          }
        }
        streamSize = 0;
        sent = accepted - 1;
      }
      for (int j = before; j < accepted; j++) {
        if (!out.emit(ctx[j], scores, j - before, req)) {
          break generation;
        }
      }
    }
    log.info("pipelined generation rounds={} drafted={} accepted={} cancelledRounds={} depthUsed={} controller={}",
        rounds, drafted, acceptedTotal, cancelled, deepest, fixed != null ? fixed : controller);
    return out.finish(prompt, rounds, drafted, acceptedTotal, target);
  }

  /** Drops the first {@code n} stream tokens (now accepted); returns the new size. */
  private static int shift(int[] stream, double[][] q, int size, int n) {
    System.arraycopy(stream, n, stream, 0, size - n);
    System.arraycopy(q, n, q, 0, size - n);
    return size - n;
  }
}
