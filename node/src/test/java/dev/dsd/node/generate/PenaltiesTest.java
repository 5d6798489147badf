package dev.dsd.node.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.LogitScores;
import dev.dsd.verification.processing.Penalties;
import dev.dsd.verification.processing.PenaltyState;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Penalties and logprobs in local generation: greedy speculation with a penalty gives the tokens of
 * greedy decoding with it, and logprobs are the log-softmax of the penalized logits.
 */
public class PenaltiesTest {
  /** Twenty short prompts of different shapes (code, prose, repeats). */
  public static final String[] PROMPTS = {"def f(x):", "the theory of ", "aaaa bbbb aaaa", "x = [1, 2, 3]\n", "import os",
      "class A:", "for i in", "return x +", "hello hello", "if a == b:", "while True:", "print(", "# note:",
      "s = 'abc'", "try:\n  ", "lambda y:", "a, b = b, a", "with open(", "yield from", "assert x"};
  public static final Penalties[] EACH = {new Penalties(1.8, 0, 0), new Penalties(1, 1.5, 0), new Penalties(1, 0, 0.9),
      new Penalties(0.7, -0.5, 0.3)};
  @TempDir Path tmp;

  Path target() throws Exception {
    return TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).maxPositions(128).seed(21)
        .writeTo(tmp.resolve("target"));
  }

  Path draft() throws Exception {
    return TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(1).maxPositions(128).seed(5)
        .writeTo(tmp.resolve("draft"));
  }

  @Test
  void greedySpeculationWithEachPenaltyIsGreedyDecodingWithIt() throws Exception {
    Path t = target();
    // the target as its own draft applies the same penalties, so it is accepted nearly always; a
    // different random draft is rejected often, which exercises the history's rollback
    try (LocalGenerator plain = new LocalGenerator(t, 1);
        LocalGenerator self = new LocalGenerator(t, t, 1);
        LocalGenerator other = new LocalGenerator(t, draft(), 1)) {
      for (Penalties p : EACH) {
        long drafted = 0;
        long accepted = 0;
        long selfDrafted = 0;
        long selfAccepted = 0;
        int changed = 0;
        for (String prompt : PROMPTS) {
          GenerationRequest base = GenerationRequest.greedy(prompt, 24).withPenalties(p);
          int[] want = plain.generate(base, TokenSink.NONE).tokenIds();
          changed += Arrays.equals(want, plain.generate(GenerationRequest.greedy(prompt, 24), TokenSink.NONE).tokenIds())
              ? 0 : 1;
          for (LocalGenerator g : new LocalGenerator[] {self, other}) {
            for (int k : new int[] {3, GenerationRequest.AUTO}) {
              GenerationResult got = g.generate(base.withSpeculation(k), TokenSink.NONE);
              assertArrayEquals(want, got.tokenIds(), p + " prompt '" + prompt + "' k=" + k);
              drafted += got.draftedTokens();
              accepted += got.acceptedTokens();
              if (g == self) {
                selfDrafted += got.draftedTokens();
                selfAccepted += got.acceptedTokens();
              }
            }
          }
        }
        assertTrue(changed >= PROMPTS.length / 2, p + " changed only " + changed + " of the greedy outputs");
        assertTrue(accepted > 0 && accepted < drafted, p + ": " + accepted + " of " + drafted + " accepted");
        assertTrue(selfAccepted >= 0.9 * selfDrafted, p + ": the draft applies the penalties too, yet only "
            + selfAccepted + " of " + selfDrafted + " of the target's own tokens were accepted");
      }
    }
  }

  @Test
  void logprobsAreTheLogSoftmaxOfThePenalizedLogits() throws Exception {
    Path t = target();
    Penalties p = new Penalties(1.5, 0.5, 0.5);
    try (LocalGenerator spec = new LocalGenerator(t, draft(), 1);
        Checkpoint ck = Checkpoint.open(t);
        ShardRunner whole = new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(1))) {
      int vocab = ck.config().vocabSize();
      int usable = Math.min(vocab, ck.tokenizer().vocabSize());
      for (double temperature : new double[] {0, 0.8}) {
        GenerationRequest req = new GenerationRequest("def f(x):", 12, temperature, 0.9, 3, 3, false, List.of(), p, 4);
        GenerationResult r = spec.generate(req, TokenSink.NONE);
        assertEquals(r.tokenIds().length, r.logprobs().size());
        int[] prompt = ck.tokenizer().encode(req.prompt());
        PenaltyState history = new PenaltyState(p, prompt.length, vocab, 128);
        try (ShardSession s = whole.openSession("ref" + temperature, "test", 128)) {
          float[] logits = whole.forwardTokens(s, prompt);
          float[] row = Arrays.copyOfRange(logits, (prompt.length - 1) * vocab, prompt.length * vocab);
          for (int i = 0; i < prompt.length; i++) {
            history.append(prompt[i]);
          }
          for (int i = 0; i < r.tokenIds().length; i++) {
            VocabMask.apply(row, vocab, usable);
            history.apply(row, 0);
            double lse = 0;
            double max = Double.NEGATIVE_INFINITY;
            for (float l : row) {
              max = Math.max(max, l);
            }
            for (float l : row) {
              lse += Math.exp(l - max);
            }
            lse = max + Math.log(lse);
            TokenChoice c = r.logprobs().get(i);
            int tok = r.tokenIds()[i];
            assertEquals(tok, c.token());
            assertEquals(row[tok] - lse, c.logprob(), 2e-3, "T=" + temperature + " token " + i);
            assertEquals(4, c.top().size());
            assertEquals(row[c.top().get(0).token()] - lse, c.top().get(0).logprob(), 2e-3);
            assertEquals(new LogitScores(row, vocab, 0, 1).argmax(0), c.top().get(0).token());
            if (temperature == 0) {
              assertEquals(c.top().get(0).token(), tok, "greedy picks the penalized argmax");
            }
            assertNotEquals("", c.text());
            history.append(tok);
            row = whole.forwardTokens(s, new int[] {tok});
          }
        }
      }
    }
  }
}
