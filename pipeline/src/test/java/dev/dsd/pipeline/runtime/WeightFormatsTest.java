package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/** Every weight format runs, stays near f32, and gives the same numbers sharded as whole. */
class WeightFormatsTest {
  static final int[] PROMPT = ShardRuntimeTest.PROMPT;

  @TempDir Path tmp;

  static RunnerOptions options(WeightFormat f) {
    return RunnerOptions.defaults().withThreads(1).withWeights(f);
  }

  private Checkpoint model(String name, boolean tied, boolean qwen) throws Exception {
    TinyCheckpoint spec = TinyCheckpoint.builder().layers(3).hidden(64).intermediate(128).heads(4).kvHeads(2)
        .tied(tied).seed(11);
    if (qwen) {
      spec = spec.qwen2();
    }
    return Checkpoint.open(spec.writeTo(tmp.resolve(name)));
  }

  @ParameterizedTest
  @EnumSource(WeightFormat.class)
  void shardsChainedEqualTheWholeModelInEveryFormat(WeightFormat f) throws Exception {
    for (boolean tied : new boolean[] {false, true}) {
      try (Checkpoint ck = model("m" + tied, tied, !tied)) {
        int layers = ck.config().numLayers();
        float[] whole;
        try (ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, layers, options(f))) {
          assertEquals(f, r.weightFormat());
          whole = r.forwardTokens(r.openSession("w", "t", 32), PROMPT);
        }
        List<ShardRunner> runners = new ArrayList<>();
        try {
          for (int[] cut : new int[][] {{0, 1}, {1, 2}, {2, layers}}) {
            runners.add(new ShardRunner(ck.config(), ck.weights(), cut[0], cut[1], options(f)));
          }
          float[] out = runners.get(0).forwardTokens(runners.get(0).openSession("s", "t", 32), PROMPT);
          for (int i = 1; i < runners.size(); i++) {
            out = runners.get(i).forwardHidden(runners.get(i).openSession("s", "t", 32), out, PROMPT.length);
          }
          ShardRuntimeTest.assertClose(whole, out, f.id() + " tied=" + tied + " 3 shards");
        } finally {
          runners.forEach(ShardRunner::close);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(value = WeightFormat.class, names = {"F16", "Q8", "Q4"})
  void formatsStayNearF32(WeightFormat f) throws Exception {
    try (Checkpoint ck = model("m", false, false)) {
      int layers = ck.config().numLayers();
      float[] ref;
      float[] got;
      long f32Bytes;
      long bytes;
      try (ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, layers, options(WeightFormat.F32))) {
        ref = r.forwardTokens(r.openSession("w", "t", 32), PROMPT);
        f32Bytes = r.weightBytes();
      }
      try (ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, layers, options(f))) {
        got = r.forwardTokens(r.openSession("w", "t", 32), PROMPT);
        bytes = r.weightBytes();
      }
      double num = 0;
      double den = 0;
      for (int i = 0; i < ref.length; i++) {
        num += (ref[i] - got[i]) * (ref[i] - got[i]);
        den += ref[i] * ref[i];
      }
      double rel = Math.sqrt(num / den);
      // relative RMS error of the logits of this random 3-layer model: measured f16 ~1e-4, q8 0.034,
      // q4 0.32 (int8 activations included); wrong nibble order or scales give ~1.4
      double limit = switch (f) {
        case F16 -> 0.005;
        case Q8 -> 0.06;
        default -> 0.5;
      };
      assertTrue(rel < limit && rel > 0, f.id() + ": relative logit error " + rel + " (limit " + limit + ")");
      assertTrue(bytes < f32Bytes, f.id() + " holds " + bytes + " bytes, f32 " + f32Bytes);
    }
  }

  @Test
  void aCheckpointAQuantizedFormatCannotTakeGetsOneLineNamingTheTensor() throws Exception {
    // hidden 48: q/k/v/gate/up take 48 inputs, not a multiple of the 32-input block
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(48).heads(6).kvHeads(2).seed(2)
        .writeTo(tmp.resolve("odd")))) {
      for (WeightFormat f : new WeightFormat[] {WeightFormat.Q8, WeightFormat.Q4}) {
        ModelFormatException e = assertThrows(ModelFormatException.class,
            () -> new ShardRunner(ck.config(), ck.weights(), 0, 2, options(f)));
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj.weight") && e.getMessage().contains("48")
            && e.getMessage().contains(f.id()) && !e.getMessage().contains("\n"), e.getMessage());
      }
      // f16 takes any shape
      new ShardRunner(ck.config(), ck.weights(), 0, 2, options(WeightFormat.F16)).close();
    }
  }
}
