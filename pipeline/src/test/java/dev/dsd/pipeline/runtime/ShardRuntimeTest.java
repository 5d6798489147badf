package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.reference.ReferenceModel;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The ONNX shards against the Java reference, and against each other. */
class ShardRuntimeTest {
  static final double TOL = 1e-4;
  static final int[] PROMPT = {5, 17, 42, 99, 3, 250, 7, 64, 1, 128, 77};

  @TempDir Path tmp;

  static Stream<Arguments> variants() {
    return Stream.of(
        Arguments.of("llama", TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(4).seed(1)),
        Arguments.of("gqa", TinyCheckpoint.builder().layers(4).hidden(48).heads(6).kvHeads(2).seed(2)),
        Arguments.of("qwen2-bias", TinyCheckpoint.builder().qwen2().layers(3).hidden(32).heads(4).kvHeads(2).seed(3)),
        Arguments.of("tied", TinyCheckpoint.builder().layers(2).hidden(32).heads(2).kvHeads(1).tied(true).seed(4)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("variants")
  void onnxLogitsMatchReference(String name, TinyCheckpoint spec) throws Exception {
    try (Checkpoint ck = Checkpoint.open(spec.writeTo(tmp.resolve(name)));
        ShardRunner runner = whole(ck)) {
      ModelConfig c = ck.config();
      ReferenceModel ref = new ReferenceModel(c, ck.weights(), 0, c.numLayers());
      ReferenceModel.Cache rc = ref.newCache(64);
      ShardSession s = runner.openSession("s", "test", 64);
      // Prompt in one call, then three single-token steps.
      assertClose(ref.forwardTokens(rc, PROMPT), runner.forwardTokens(s, PROMPT), name + " prompt");
      for (int t : new int[] {9, 200, 31}) {
        assertClose(ref.forwardTokens(rc, new int[] {t}), runner.forwardTokens(s, new int[] {t}), name + " step");
      }
    }
  }

  @Test
  void shardsChainedEqualTheWholeModel() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(4).hidden(48).heads(6).kvHeads(2).seed(5)
        .writeTo(tmp.resolve("m")))) {
      float[] whole;
      try (ShardRunner r = whole(ck)) {
        whole = r.forwardTokens(r.openSession("w", "t", 32), PROMPT);
      }
      int[][][] splits = {{{0, 4}}, {{0, 2}, {2, 4}}, {{0, 1}, {1, 3}, {3, 4}}, {{0, 1}, {1, 2}, {2, 3}, {3, 4}}};
      for (int[][] split : splits) {
        List<ShardRunner> runners = new ArrayList<>();
        try {
          for (int[] r : split) {
            runners.add(new ShardRunner(ck.config(), ck.weights(), r[0], r[1], RunnerOptions.defaults().withThreads(1)));
          }
          float[] out = runners.get(0).forwardTokens(runners.get(0).openSession("s", "t", 32), PROMPT);
          for (int i = 1; i < runners.size(); i++) {
            out = runners.get(i).forwardHidden(runners.get(i).openSession("s", "t", 32), out, PROMPT.length);
          }
          assertClose(whole, out, split.length + " shards");
        } finally {
          runners.forEach(ShardRunner::close);
        }
      }
    }
  }

  @Test
  void incrementalDecodingEqualsFullRecomputationAndBatchedVerification() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(3).hidden(32).heads(4).kvHeads(2).seed(6)
        .writeTo(tmp.resolve("m")));
        ShardRunner r = whole(ck)) {
      int v = ck.config().vocabSize();
      float[] full = r.forwardTokens(r.openSession("full", "t", 32), PROMPT);
      // one token per call
      ShardSession inc = r.openSession("inc", "t", 32);
      for (int i = 0; i < PROMPT.length; i++) {
        float[] step = r.forwardTokens(inc, new int[] {PROMPT[i]});
        assertClose(Arrays.copyOfRange(full, i * v, (i + 1) * v), step, "token " + i);
      }
      // 4 prompt tokens, then the remaining 7 verified in one call (as speculative verification does)
      ShardSession ver = r.openSession("ver", "t", 32);
      r.forwardTokens(ver, Arrays.copyOf(PROMPT, 4));
      float[] batch = r.forwardTokens(ver, Arrays.copyOfRange(PROMPT, 4, PROMPT.length));
      assertClose(Arrays.copyOfRange(full, 4 * v, PROMPT.length * v), batch, "verify 7 in one call");
      assertEquals(PROMPT.length, ver.length());
    }
  }

  @Test
  void truncateThenDecodeEqualsAFreshSessionThatSawOnlyThePrefix() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).seed(7)
        .writeTo(tmp.resolve("m")));
        ShardRunner r = whole(ck)) {
      ShardSession s = r.openSession("s", "t", 32);
      r.forwardTokens(s, PROMPT); // 11 tokens, as if 4 of them were rejected drafts
      s.truncate(7);
      float[] afterTruncate = r.forwardTokens(s, new int[] {33, 44});
      ShardSession fresh = r.openSession("fresh", "t", 32);
      r.forwardTokens(fresh, Arrays.copyOf(PROMPT, 7));
      assertClose(r.forwardTokens(fresh, new int[] {33, 44}), afterTruncate, "after truncate");
      assertEquals(9, s.length());
      assertThrows(IllegalArgumentException.class, () -> s.truncate(10));
    }
  }

  static ShardRunner whole(Checkpoint ck) {
    return new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(), RunnerOptions.defaults().withThreads(1));
  }

  static void assertClose(float[] expected, float[] actual, String what) {
    assertEquals(expected.length, actual.length, what + ": length");
    double max = 0;
    for (int i = 0; i < expected.length; i++) {
      max = Math.max(max, Math.abs(expected[i] - actual[i]));
    }
    assertTrue(max <= TOL, what + ": max abs error " + max + " > " + TOL);
  }
}
