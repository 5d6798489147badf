package dev.dsd.node.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An entry's local draft: generations drafting at once share passes and propose what each would alone. */
class BatchedDraftingTest {
  static final int SESSIONS = 6;
  static final int ROUNDS = 12;
  @TempDir Path tmp;

  /**
   * One generation's drafting: prompt, then rounds of propose(k) and a verdict that keeps a
   * varying number of drafts (the schedule depends only on the session and the round, and the
   * correction token on what was proposed, so two runs agree exactly when their proposals do).
   */
  static List<int[]> draft(DraftModel model, int session, CyclicBarrier start) throws Exception {
    GenerationRequest req = new GenerationRequest("p" + session, 64, 0, 1, 0, 4, false, List.of());
    SplittableRandom rnd = new SplittableRandom(100 + session);
    int vocab = model.config().vocabSize();
    int[] prompt = rnd.ints(3 + session * 5, 0, vocab).toArray(); // ragged past lengths
    List<int[]> out = new ArrayList<>();
    try (Drafter d = model.newDrafter(req, 256, vocab)) {
      if (start != null) {
        start.await();
      }
      d.start(prompt);
      int context = prompt.length;
      for (int round = 0; round < ROUNDS; round++) {
        int k = 1 + (session + round) % 5; // ragged rows: sessions' windows differ
        int[] drafts = d.propose(k);
        out.add(drafts);
        int kept = (session * 7 + round * 3) % (k + 1);
        int next = (drafts[0] * 31 + round) % vocab;
        d.accepted(context, drafts, kept, next);
        context += kept + 1;
      }
    }
    return out;
  }

  @Test
  void concurrentGreedyDraftsEqualEachAlone() throws Exception {
    Path dir = TinyCheckpoint.builder().layers(2).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(5)
        .writeTo(tmp.resolve("draft"));
    try (Checkpoint ck = Checkpoint.open(dir);
        DraftModel model = DraftModel.load(dir, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1)) {
      List<List<int[]>> alone = new ArrayList<>();
      for (int s = 0; s < SESSIONS; s++) {
        alone.add(draft(model, s, null));
      }
      long rowsBefore = model.passes().rows();
      long passesBefore = model.passes().passes();
      assertTrue(rowsBefore == passesBefore, "a session drafting alone runs passes of one row");
      ExecutorService pool = Executors.newFixedThreadPool(SESSIONS);
      try {
        CyclicBarrier start = new CyclicBarrier(SESSIONS);
        List<Future<List<int[]>>> together = new ArrayList<>();
        for (int s = 0; s < SESSIONS; s++) {
          int session = s;
          together.add(pool.submit(() -> draft(model, session, start)));
        }
        for (int s = 0; s < SESSIONS; s++) {
          List<int[]> got = together.get(s).get();
          for (int r = 0; r < ROUNDS; r++) {
            assertArrayEquals(alone.get(s).get(r), got.get(r), "session " + s + " round " + r);
          }
        }
      } finally {
        pool.shutdownNow();
      }
      long rows = model.passes().rows() - rowsBefore;
      long passes = model.passes().passes() - passesBefore;
      assertTrue(rows > passes, "concurrent sessions shared passes: " + rows + " rows in " + passes + " passes");
    }
  }
}
