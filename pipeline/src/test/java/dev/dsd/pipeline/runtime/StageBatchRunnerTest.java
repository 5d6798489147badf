package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Ragged batched stage calls against the per-session runner, row by row. */
class StageBatchRunnerTest {
  static final double TOL = 1e-4;

  @TempDir Path tmp;

  @Test
  void raggedRowsEqualSoloCallsOnEveryShard() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(4).hidden(48).heads(6).kvHeads(2).seed(7)
        .writeTo(tmp.resolve("m")))) {
      ModelConfig c = ck.config();
      RunnerOptions o = RunnerOptions.defaults();
      try (ShardRunner soloA = new ShardRunner(c, ck.weights(), 0, 2, o);
          ShardRunner soloB = new ShardRunner(c, ck.weights(), 2, 4, o);
          StageBatchRunner a = new StageBatchRunner(c, ck.weights(), 0, 2, o);
          StageBatchRunner b = new StageBatchRunner(c, ck.weights(), 2, 4, o)) {
        // three sessions with different prompts, then rounds of different sizes and rollbacks
        int[][][] rounds = {
            {{5, 17, 42, 99, 3}, {8}, {250, 7, 64, 1, 128, 77, 9}},
            {{9, 200}, {31, 4, 4, 4}, {2}},
            {{11}, {12, 13, 14}, {15, 16}},
        };
        int[][] keeps = {{0, 0, 0}, {5, 1, 6}, {6, 3, 7}};
        int sessions = 3;
        ShardSession[] sa = new ShardSession[sessions];
        ShardSession[] sb = new ShardSession[sessions];
        StageKv[] ka = new StageKv[sessions];
        StageKv[] kb = new StageKv[sessions];
        for (int i = 0; i < sessions; i++) {
          sa[i] = soloA.openSession("s" + i, "t", 64);
          sb[i] = soloB.openSession("s" + i, "t", 64);
          ka[i] = a.openSession("s" + i, "t", 64);
          kb[i] = b.openSession("s" + i, "t", 64);
        }
        for (int r = 0; r < rounds.length; r++) {
          List<StageBatchRunner.Row> first = new ArrayList<>();
          float[][] expected = new float[sessions][];
          for (int i = 0; i < sessions; i++) {
            int[] tokens = rounds[r][i];
            sa[i].truncate(keeps[r][i]);
            sb[i].truncate(keeps[r][i]);
            ka[i].truncate(keeps[r][i]);
            kb[i].truncate(keeps[r][i]);
            expected[i] = soloB.forwardHidden(sb[i], soloA.forwardTokens(sa[i], tokens), tokens.length);
            first.add(StageBatchRunner.Row.tokens(ka[i], tokens));
          }
          float[][] hidden = a.forward(first);
          List<StageBatchRunner.Row> second = new ArrayList<>();
          for (int i = 0; i < sessions; i++) {
            second.add(StageBatchRunner.Row.hidden(kb[i], hidden[i], rounds[r][i].length));
          }
          float[][] logits = b.forward(second);
          for (int i = 0; i < sessions; i++) {
            assertEquals(expected[i].length, logits[i].length);
            for (int j = 0; j < logits[i].length; j++) {
              assertTrue(Math.abs(expected[i][j] - logits[i][j]) < TOL, "round " + r + " session " + i + " value " + j
                  + ": " + expected[i][j] + " vs " + logits[i][j]);
            }
            assertEquals(keeps[r][i] + rounds[r][i].length, kb[i].length());
          }
        }
      }
    }
  }

  @Test
  void aBadRowIsRefusedBeforeAnyCacheChanges() throws Exception {
    try (Checkpoint ck = Checkpoint.open(TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).seed(8)
        .writeTo(tmp.resolve("m")));
        StageBatchRunner r = new StageBatchRunner(ck.config(), ck.weights(), 0, 2, RunnerOptions.defaults())) {
      StageKv good = r.openSession("a", "t", 8);
      StageKv small = r.openSession("b", "t", 2);
      assertThrows(RuntimeLimitException.class, () -> r.forward(List.of(StageBatchRunner.Row.tokens(good, new int[] {1, 2}),
          StageBatchRunner.Row.tokens(small, new int[] {1, 2, 3}))));
      assertThrows(IllegalArgumentException.class, () -> r.forward(List.of(StageBatchRunner.Row.tokens(good, new int[] {1}),
          StageBatchRunner.Row.tokens(good, new int[] {2}))));
      assertEquals(0, good.length());
      assertEquals(0, small.length());
      small.close();
      assertEquals(1, r.sessions().size());
    }
  }
}
