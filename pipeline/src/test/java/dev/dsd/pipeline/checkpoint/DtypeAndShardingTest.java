package dev.dsd.pipeline.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.safetensors.DType;
import dev.dsd.pipeline.safetensors.Half;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** F16 and BF16 checkpoints, and a sharded index, compute what the F32 checkpoint computes. */
class DtypeAndShardingTest {
  @TempDir Path tmp;
  static final int[] PROMPT = {3, 14, 15, 92, 65, 35};

  private float[] logits(Path dir) {
    try (Checkpoint ck = Checkpoint.open(dir);
        ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(1))) {
      return r.forwardTokens(r.openSession("s", "t", 16), PROMPT);
    }
  }

  private static double maxDiff(float[] a, float[] b) {
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }

  @Test
  void halfPrecisionCheckpointsAgreeWithF32() throws Exception {
    TinyCheckpoint spec = TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).seed(11);
    float[] f32 = logits(spec.dtype(DType.F32).writeTo(tmp.resolve("f32")));
    float[] f16 = logits(spec.dtype(DType.F16).writeTo(tmp.resolve("f16")));
    float[] bf16 = logits(spec.dtype(DType.BF16).writeTo(tmp.resolve("bf16")));
    // Tolerances follow the formats' precision: 11 and 8 significant bits of each weight.
    assertTrue(maxDiff(f32, f16) < 2e-2, "F16 differs by " + maxDiff(f32, f16));
    assertTrue(maxDiff(f32, bf16) < 1.5e-1, "BF16 differs by " + maxDiff(f32, bf16));
    assertNotEquals(0.0, maxDiff(f32, bf16), "BF16 must actually round the weights");
  }

  @Test
  void shardedIndexLoadsTheSameWeights() throws Exception {
    TinyCheckpoint spec = TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).seed(12);
    float[] single = logits(spec.writeTo(tmp.resolve("single")));
    float[] sharded = logits(spec.sharded(true).writeTo(tmp.resolve("sharded")));
    assertEquals(0.0, maxDiff(single, sharded));
  }

  @Test
  void halfConversionsRoundTripExactlyRepresentableValues() {
    for (float f : new float[] {0f, -0f, 1f, -2.5f, 65504f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f}) {
      assertEquals(f, Half.toFloat(Half.fromFloat(f)), "F16 " + f);
    }
    assertEquals(Float.POSITIVE_INFINITY, Half.toFloat(Half.fromFloat(1e6f)));
    assertTrue(Float.isNaN(Half.toFloat(Half.fromFloat(Float.NaN))));
    for (float f : new float[] {1f, -3.140625f, Float.intBitsToFloat(0x70000000)}) {
      assertEquals(f, Float.intBitsToFloat((Half.bf16FromFloat(f) & 0xffff) << 16), "BF16 " + f);
    }
  }
}
