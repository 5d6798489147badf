package dev.dsd.pipeline.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PassCombinerTest {
  @TempDir Path tmp;

  @Test
  void aBadRowInASharedPassFailsOnlyItsOwnStep() throws Exception {
    Path dir = TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).maxPositions(64).seed(3)
        .writeTo(tmp.resolve("m"));
    try (Checkpoint ck = Checkpoint.open(dir);
        BatchRunner runner = new BatchRunner(ck.config(), ck.weights(), RunnerOptions.defaults().withThreads(1))) {
      PassCombiner combiner = new PassCombiner(runner, 8);
      int vocab = ck.config().vocabSize();
      BatchSession a = runner.openSession("a", 32);
      BatchSession b = runner.openSession("b", 32);
      BatchSession c = runner.openSession("c", 32);
      BatchSession soloA = runner.openSession("sa", 32);
      BatchSession soloC = runner.openSession("sc", 32);
      PassCombiner.Step good1 = new PassCombiner.Step(new BatchRunner.Row(a, new int[] {1, 2}));
      PassCombiner.Step bad = new PassCombiner.Step(new BatchRunner.Row(b, new int[] {vocab})); // outside the vocabulary
      PassCombiner.Step good2 = new PassCombiner.Step(new BatchRunner.Row(c, new int[] {3}));
      combiner.run(List.of(good1, bad, good2));
      assertNotNull(bad.error);
      assertNull(good1.error);
      assertNull(good2.error);
      assertEquals(0, b.length(), "the failed row's cache is untouched");
      assertEquals(2, a.length());
      assertArrayEquals(combiner.forward(soloA, new int[] {1, 2}), good1.logits, "row a as alone");
      assertArrayEquals(combiner.forward(soloC, new int[] {3}), good2.logits, "row c as alone");
      b.close();
      assertThrows(IllegalStateException.class, () -> combiner.forward(b, new int[] {1}));
      // the combiner is still usable after a failed step
      assertEquals(vocab, combiner.forward(c, new int[] {4}).length);
    }
  }
}
