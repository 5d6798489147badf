package dev.dsd.pipeline.golden;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The cross-implementation check: the shipped models, loaded and run by dsd's Java graph builder,
 * reproduce the logits PyTorch computed at every position of the golden prompts (tools/train/export.py),
 * and DJL's tokenizer gives the ids the Python trainer's encoder gave.
 */
class GoldenVectorsTest {
  static final double TOLERANCE = 1e-3;

  static Path models() {
    return Path.of(System.getProperty("dsd.models", "../models"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"pycoder-target", "pycoder-draft"})
  void shippedModelsReproducePyTorchLogits(String name) throws Exception {
    Path dir = models().resolve(name);
    assertTrue(Files.isDirectory(dir), "the bundled model " + dir.toAbsolutePath() + " is missing");
    JsonNode golden = new ObjectMapper().readTree(dir.resolve("golden.json").toFile());
    try (Checkpoint ck = Checkpoint.open(dir);
        SafetensorsFile expected = SafetensorsFile.open(dir.resolve("golden.safetensors"));
        ShardRunner r = new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(1))) {
      int cases = 0;
      for (JsonNode c : golden.get("cases")) {
        int[] ids = Stream.of(c.get("token_ids")).flatMap(n -> Stream.iterate(0, i -> i < n.size(), i -> i + 1)
            .map(n::get)).mapToInt(JsonNode::asInt).toArray();
        assertArrayEquals(ids, ck.tokenizer().encode(c.get("prompt").asText()), "tokenizer ids for " + c.get("prompt"));
        float[] want = expected.read(c.get("logits").asText());
        float[] got = r.forwardTokens(r.openSession("golden" + cases, "test", ids.length), ids);
        assertEquals(want.length, got.length);
        double max = 0;
        for (int i = 0; i < want.length; i++) {
          max = Math.max(max, Math.abs(want[i] - got[i]));
        }
        assertTrue(max <= TOLERANCE, name + " case " + cases + ": max abs error " + max + " > " + TOLERANCE);
        cases++;
      }
      assertTrue(cases >= 3, "golden.json must hold at least 3 prompts");
    }
  }
}
