package dev.dsd.node.draft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.BatchRunner;
import dev.dsd.pipeline.runtime.BatchSession;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.RuntimeLimitException;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The batched forward against the per-session runner: same logits, row by row, whatever the batch. */
class DraftBatchRunnerTest {
  static final double TOL = 1e-4;
  @TempDir Path tmp;

  @Test
  void batchedPassesEqualPerSessionPasses() throws Exception {
    // GQA (2 query heads per KV head) so the batched attention's head grouping is exercised
    Path dir = TinyCheckpoint.builder().layers(3).hidden(48).heads(6).kvHeads(2).maxPositions(128).seed(7)
        .writeTo(tmp.resolve("m"));
    try (Checkpoint ck = Checkpoint.open(dir);
        ShardRunner single = new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(1));
        BatchRunner batch = new BatchRunner(ck.config(), ck.weights(), RunnerOptions.defaults().withThreads(1))) {
      ModelConfig c = ck.config();
      int rows = 5;
      SplittableRandom rnd = new SplittableRandom(3);
      List<ShardSession> ref = new ArrayList<>();
      List<BatchSession> got = new ArrayList<>();
      for (int i = 0; i < rows; i++) {
        ref.add(single.openSession("r" + i, "t", 100));
        got.add(batch.openSession("b" + i, 100));
      }
      double worst = 0;
      for (int step = 0; step < 12; step++) {
        List<BatchRunner.Row> pass = new ArrayList<>();
        List<Integer> members = new ArrayList<>();
        for (int i = 0; i < rows; i++) {
          // rows join and sit out at random, with different numbers of new tokens (prefills among steps)
          if (step > 0 && rnd.nextInt(4) == 0) {
            continue;
          }
          int n = step == 0 ? 1 + i * 3 : 1 + rnd.nextInt(i % 2 == 0 ? 1 : 3);
          int[] tokens = rnd.ints(n, 0, c.vocabSize()).toArray();
          pass.add(new BatchRunner.Row(got.get(i), tokens));
          members.add(i);
        }
        if (pass.isEmpty()) {
          continue;
        }
        float[][] out = batch.forward(pass);
        for (int j = 0; j < pass.size(); j++) {
          int i = members.get(j);
          float[] want = single.forwardTokens(ref.get(i), pass.get(j).tokens());
          assertEquals(want.length, out[j].length);
          for (int x = 0; x < want.length; x++) {
            worst = Math.max(worst, Math.abs(want[x] - out[j][x]));
          }
          assertEquals(ref.get(i).length(), got.get(i).length());
        }
        // rollback as after rejected drafts: both caches drop the same positions
        if (step % 3 == 2) {
          for (int i = 0; i < rows; i++) {
            int keep = Math.max(1, ref.get(i).length() - 1 - rnd.nextInt(2));
            ref.get(i).truncate(keep);
            got.get(i).truncate(keep);
          }
        }
      }
      assertTrue(worst < TOL, "largest logit difference " + worst);
    }
  }

  @Test
  void limitsAndBadRowsAreRefused() throws Exception {
    Path dir = TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(1).maxPositions(32).seed(1)
        .writeTo(tmp.resolve("m"));
    try (Checkpoint ck = Checkpoint.open(dir);
        BatchRunner batch = new BatchRunner(ck.config(), ck.weights(),
            new RunnerOptions(1, 2, 1L << 30, RunnerOptions.DEFAULT_IDLE_TIMEOUT))) {
      BatchSession a = batch.openSession("a", 4);
      BatchSession b = batch.openSession("b", 8);
      assertThrows(RuntimeLimitException.class, () -> batch.openSession("c", 4));
      assertThrows(RuntimeLimitException.class, () -> batch.forward(List.of(new BatchRunner.Row(a, new int[5]))));
      assertThrows(IllegalArgumentException.class,
          () -> batch.forward(List.of(new BatchRunner.Row(b, new int[] {ck.config().vocabSize()}))));
      assertThrows(IllegalArgumentException.class,
          () -> batch.forward(List.of(new BatchRunner.Row(a, new int[1]), new BatchRunner.Row(a, new int[1]))));
      assertEquals(0, a.length(), "a refused pass changes no cache");
      a.close();
      batch.openSession("c", 4);
      assertEquals(2, batch.sessionCount());
    }
  }
}
