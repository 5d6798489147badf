package dev.dsd.node.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Local generation, plain and speculative, on random tiny models. */
class LocalGeneratorTest {
  @TempDir Path tmp;
  static final String[] PROMPTS = {"def f(x):", "the theory of ", "aaaa bbbb aaaa", "x = [1, 2, 3]\n"};

  Path target() throws Exception {
    return TinyCheckpoint.builder().layers(3).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
  }

  Path draft(long seed) throws Exception {
    return TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(1).maxPositions(256).seed(seed)
        .writeTo(tmp.resolve("draft" + seed));
  }

  static GenerationRequest greedy(String prompt, int max, int k) {
    return new GenerationRequest(prompt, max, 0, 1, 0, k, false, List.of());
  }

  @Test
  void greedySpeculationIsTokenForTokenTheTargetAlone() throws Exception {
    Path t = target();
    try (LocalGenerator plain = new LocalGenerator(t, 1);
        LocalGenerator spec = new LocalGenerator(t, draft(5), 1)) {
      long drafted = 0;
      long accepted = 0;
      for (String p : PROMPTS) {
        GenerationResult want = plain.generate(greedy(p, 40, 0), TokenSink.NONE);
        for (int k : new int[] {1, 2, 4, 7, GenerationRequest.AUTO, GenerationRequest.LEARNED}) {
          GenerationResult got = spec.generate(greedy(p, 40, k), TokenSink.NONE);
          assertArrayEquals(want.tokenIds(), got.tokenIds(), "prompt '" + p + "' k=" + k);
          assertEquals(want.text(), got.text());
          drafted += got.draftedTokens();
          accepted += got.acceptedTokens();
          assertTrue(got.rounds() < want.rounds() || got.acceptedTokens() == 0);
        }
      }
      assertTrue(drafted > 0);
      assertTrue(accepted < drafted, "a different random draft must be rejected sometimes (rollback exercised)");
    }
  }

  @Test
  void aDraftIdenticalToTheTargetIsAlwaysAccepted() throws Exception {
    Path t = target();
    try (LocalGenerator spec = new LocalGenerator(t, t, 1)) {
      GenerationResult r = spec.generate(greedy(PROMPTS[0], 41, 4), TokenSink.NONE);
      assertEquals(41, r.tokenIds().length);
      assertEquals(1.0, r.acceptanceRate());
      assertEquals(9, r.rounds(), "41 tokens = 8 rounds of 4+1 and a last one");
    }
  }

  @Test
  void sampledSpeculationIsReproducibleBySeed() throws Exception {
    Path t = target();
    try (LocalGenerator spec = new LocalGenerator(t, draft(6), 1)) {
      GenerationRequest r = new GenerationRequest("import os", 30, 0.8, 0.95, 42, 3, false, List.of());
      assertArrayEquals(spec.generate(r, TokenSink.NONE).tokenIds(), spec.generate(r, TokenSink.NONE).tokenIds());
    }
  }

  @Test
  void requestsBeyondTheContextAreRefusedBeforeWork() throws Exception {
    try (LocalGenerator g = new LocalGenerator(target(), 1)) {
      GenerationException e = assertThrows(GenerationException.class, () -> g.generate(greedy("hi", 300, 0), TokenSink.NONE));
      assertTrue(e.getMessage().contains("exceeds the model's context of 256"), e.getMessage());
      assertThrows(GenerationException.class, () -> g.generate(greedy("", 5, 0), TokenSink.NONE));
      assertThrows(GenerationException.class, () -> g.generate(greedy("x".repeat(2000), 5, 0), TokenSink.NONE));
    }
  }

  @Test
  void stopStringsCutTheOutput() throws Exception {
    try (LocalGenerator g = new LocalGenerator(target(), 1)) {
      GenerationResult full = g.generate(greedy("def f(x):", 30, 0), TokenSink.NONE);
      String text = full.text();
      assertTrue(text.length() > 6);
      String stop = text.substring(3, 5);
      StringBuilder streamed = new StringBuilder();
      GenerationResult cut = g.generate(new GenerationRequest("def f(x):", 30, 0, 1, 0, 0, false, List.of(stop)),
          (piece, ids) -> {
            streamed.append(piece);
            return true;
          });
      assertEquals(text.substring(0, text.indexOf(stop)), cut.text());
      assertEquals(cut.text(), streamed.toString(), "nothing past the stop string is streamed");
      assertEquals("stop", cut.finishReason());
    }
  }

  /**
   * Adaptive verification at gap 0 relaxes nothing, so it must give the lossless output token for
   * token, greedy and sampled (the adaptive rule consumes random numbers as speculative sampling does).
   */
  @Test
  void adaptiveAtGapZeroIsTheLosslessOutput() throws Exception {
    Path t = target();
    try (LocalGenerator spec = new LocalGenerator(t, draft(5), 1)) {
      RuleChoice zero = spec.rules().withAdaptiveMaxGap(0);
      for (String p : PROMPTS) {
        for (double temp : new double[] {0, 0.8}) {
          GenerationRequest lossless = new GenerationRequest(p, 30, temp, temp > 0 ? 0.95 : 1, 9, 4, false, List.of());
          GenerationRequest adaptive = new GenerationRequest(p, 30, temp, temp > 0 ? 0.95 : 1, 9, 4, true, List.of());
          assertArrayEquals(spec.generate(lossless, TokenSink.NONE).tokenIds(),
              spec.generate(adaptive, TokenSink.NONE, SpeculativeLoop.RoundListener.NONE, zero).tokenIds(),
              "prompt '" + p + "' T=" + temp);
        }
      }
    }
  }

  @Test
  void theCalibratedGapComesFromTheModelDirectory() throws Exception {
    Path t = target();
    assertEquals(AdaptiveCalibration.DEFAULT_MAX_GAP, AdaptiveCalibration.maxGap(t), "no file: the built-in gap");
    java.nio.file.Files.writeString(t.resolve(AdaptiveCalibration.FILE), "{\"max_gap\": 0.04, \"budget\": {}}");
    assertEquals(0.04, AdaptiveCalibration.maxGap(t));
    try (LocalGenerator g = new LocalGenerator(t, 1)) {
      assertEquals(0.04, g.rules().adaptiveMaxGap());
    }
    java.nio.file.Files.writeString(t.resolve(AdaptiveCalibration.FILE), "{\"max_gap\": 1.5}");
    GenerationException e = assertThrows(GenerationException.class, () -> AdaptiveCalibration.maxGap(t));
    assertTrue(e.getMessage().contains("max_gap must be a number in [0, 1)"), e.getMessage());
    java.nio.file.Files.writeString(t.resolve(AdaptiveCalibration.FILE), "not json");
    assertThrows(GenerationException.class, () -> AdaptiveCalibration.maxGap(t));
  }
}
