package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shard benchmark's bandwidth pairing and its ONNX Runtime profile summary, on a tiny model. */
class WeightsBenchmarkTest {
  @TempDir Path tmp;

  private Checkpoint model() throws Exception {
    return Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(64).intermediate(128).heads(4).kvHeads(2)
        .seed(5).writeTo(tmp.resolve("m")));
  }

  @Test
  void everySampleIsPairedWithAProbeRead() throws Exception {
    try (Checkpoint ck = model(); BandwidthProbe probe = new BandwidthProbe(8 << 20, 1)) {
      WeightsBenchmark.Result r = WeightsBenchmark.run(ck.config(), ck.weights(), null,
          RunnerOptions.defaults().withThreads(1).withWeights(WeightFormat.Q4), 8, new int[] {1, 2}, 3, probe);
      assertEquals(2, r.rows().size());
      for (WeightsBenchmark.Row row : r.rows()) {
        assertTrue(row.probeGbPerSecond() > 0 && Double.isFinite(row.probeGbPerSecond()), row.toString());
        assertTrue(row.fractionOfProbe() > 0 && Double.isFinite(row.fractionOfProbe()), row.toString());
      }
    }
  }

  @Test
  void interleavedFormatsEachGetEveryTPairedWithProbes() throws Exception {
    try (Checkpoint ck = model(); BandwidthProbe probe = new BandwidthProbe(8 << 20, 1)) {
      RunnerOptions base = RunnerOptions.defaults().withThreads(1);
      var results = WeightsBenchmark.runInterleaved(ck.config(), ck.weights(), null,
          java.util.List.of(base.withWeights(WeightFormat.F32), base.withWeights(WeightFormat.Q4)), 8, new int[] {1, 2}, 3,
          probe);
      assertEquals(java.util.List.of(WeightFormat.F32, WeightFormat.Q4), results.stream().map(WeightsBenchmark.Result::format)
          .toList());
      assertTrue(results.get(0).bytesPerCall() > 3 * results.get(1).bytesPerCall(), "q4 reads under a third of f32");
      for (WeightsBenchmark.Result r : results) {
        assertEquals(java.util.List.of(1, 2), r.rows().stream().map(WeightsBenchmark.Row::tokens).toList());
        for (WeightsBenchmark.Row row : r.rows()) {
          assertTrue(row.medianMs() > 0 && Double.isFinite(row.fractionOfProbe()), row.toString());
        }
      }
    }
  }

  @Test
  void probeRefusesABufferItCannotHold() {
    assertThrows(IllegalArgumentException.class, () -> new BandwidthProbe(BandwidthProbe.MAX_BYTES + 1, 1));
  }

  @Test
  void profileNamesTheQuantizedMatMulAndStaysWithinTheCalls() throws Exception {
    try (Checkpoint ck = model()) {
      Path prefix = tmp.resolve("prof");
      Map<String, Double> ops = WeightsBenchmark.profile(ck.config(), ck.weights(), null,
          RunnerOptions.defaults().withThreads(1).withWeights(WeightFormat.Q4), 8, 4, prefix);
      double run = ops.remove("(run)");
      assertTrue(run > 0, ops.toString());
      assertTrue(ops.containsKey("MatMulNBits"), ops.toString());
      double sum = ops.values().stream().mapToDouble(Double::doubleValue).sum();
      assertTrue(sum <= run, "ops " + sum + " us within calls of " + run + " us: " + ops);
      try (var files = Files.list(tmp)) {
        assertTrue(files.anyMatch(f -> f.getFileName().toString().startsWith("prof")), "profile file written");
      }
    }
  }
}
