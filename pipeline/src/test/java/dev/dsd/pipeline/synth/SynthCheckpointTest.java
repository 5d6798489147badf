package dev.dsd.pipeline.synth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.checkpoint.TensorNames;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.safetensors.DType;
import dev.dsd.pipeline.safetensors.SafetensorsWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every real shape written with one layer loads through the ordinary checkpoint loader. The
 * vocabulary is cut to 4096 (the copied tokenizer's) except where the test is about it, so the test
 * writes megabytes, not gigabytes.
 */
class SynthCheckpointTest {
  static final Path TOKENIZER = Path.of("..", "models", "pycoder-target", "tokenizer.json");

  @TempDir Path tmp;

  @Test
  void tinyLlamaShapeLoadsWithItsDimensions() throws Exception {
    SynthCheckpoint.Result r = SynthCheckpoint.write(SynthShape.TINYLLAMA_1_1B.withLayers(1).withVocab(4096),
        tmp.resolve("tl"), DType.BF16, TOKENIZER, 1);
    try (Checkpoint ck = Checkpoint.open(r.dir())) {
      ModelConfig c = ck.config();
      assertEquals(2048, c.hiddenSize());
      assertEquals(5632, c.intermediateSize());
      assertEquals(32, c.numHeads());
      assertEquals(4, c.numKvHeads());
      assertTrue(!c.tieWordEmbeddings() && ck.weights().has(TensorNames.LM_HEAD));
      assertArrayEquals(new long[] {5632, 2048}, ck.weights().shape(TensorNames.layer(0, "mlp.up_proj.weight")));
      float[] norm = ck.weights().tensor(TensorNames.NORM);
      assertEquals(1f, norm[0]);
    }
  }

  @Test
  void llama32IsTiedWithItsFullVocabulary() throws Exception {
    // Llama-3.2's 128256-row embedding is the point here; a narrow fake hidden size would defeat it,
    // so this one writes ~0.6 GB of BF16 and checks headers only.
    SynthCheckpoint.Result r = SynthCheckpoint.write(SynthShape.LLAMA_3_2_1B.withLayers(1), tmp.resolve("l32"),
        DType.BF16, TOKENIZER, 1);
    try (Checkpoint ck = Checkpoint.open(r.dir())) {
      assertTrue(ck.config().tieWordEmbeddings());
      assertEquals(128256, ck.config().vocabSize());
      assertTrue(!ck.weights().has(TensorNames.LM_HEAD));
      assertEquals("llama3", ck.config().ropeScaling().type());
    } finally {
      Files.delete(r.files().get(0));
    }
  }

  @Test
  void qwenHasQkvBiases() throws Exception {
    SynthCheckpoint.Result r = SynthCheckpoint.write(SynthShape.QWEN2_5_1_5B.withLayers(1).withVocab(4096),
        tmp.resolve("qw"), DType.F16, TOKENIZER, 1);
    try (Checkpoint ck = Checkpoint.open(r.dir())) {
      assertTrue(ck.config().attentionBias());
      assertArrayEquals(new long[] {256}, ck.weights().shape(TensorNames.layer(0, "self_attn.k_proj.bias")));
    }
  }

  @Test
  void llama2SevenBIsShardedWithAnIndex() throws Exception {
    // Files of at most 200 MB split even one layer of the 7B shape.
    SynthCheckpoint.Result r = SynthCheckpoint.write(SynthShape.LLAMA_2_7B.withLayers(1).withVocab(4096)
        .withShardBytes(200_000_000L), tmp.resolve("l2"), DType.BF16, TOKENIZER, 1);
    assertTrue(r.files().size() >= 2, "files: " + r.files());
    assertTrue(Files.exists(r.dir().resolve(SafetensorsWeights.INDEX)));
    try (Checkpoint ck = Checkpoint.open(r.dir())) {
      assertEquals(32, ck.config().numKvHeads());
      assertEquals(r.files().size(), ck.weights().paths().size());
    }
  }

  @Test
  void sameSeedSameBytes() throws Exception {
    SynthShape s = SynthShape.TINYLLAMA_1_1B.withLayers(1).withVocab(4096);
    SynthCheckpoint.Result a = SynthCheckpoint.write(s, tmp.resolve("a"), DType.BF16, TOKENIZER, 7);
    SynthCheckpoint.Result b = SynthCheckpoint.write(s, tmp.resolve("b"), DType.BF16, TOKENIZER, 7);
    assertEquals(-1, Files.mismatch(a.files().get(0), b.files().get(0)));
  }
}
