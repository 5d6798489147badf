package dev.dsd.node.stage;

import static dev.dsd.node.testing.Await.awaitTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.entry.PipelineTargetPass;
import dev.dsd.node.pipeline.PipelineException;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.routing.Route;
import dev.dsd.node.testing.Closer;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.TargetScores;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Cancel overtakes the rounds of its session queued at a stage: they never run, the cache rolls
 * back to the cancel's keep, the answers of cancelled rounds never reach the caller, and the next
 * round's answer is what a fresh session computes for the same tokens. A malformed cancel gets an
 * error that says what is wrong.
 */
class StageCancelTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();
  static final int[] PROMPT = {5, 17, 99, 3, 250, 42, 7, 7, 120, 64};
  static final PipelineTargetPass.Options F32 = PipelineTargetPass.Options.greedy().withActivations(DType.F32);

  /** Two stages; the first slow (40 ms a call), so a session's rounds queue there. */
  Route chain(List<PipelineService> services) throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
    RunnerOptions one = RunnerOptions.defaults().withThreads(1);
    List<Route.Stage> hops = new ArrayList<>();
    String modelId = null;
    int[] cuts = {0, 2, 4};
    for (int i = 0; i < 2; i++) {
      NettyHost h = closer.host();
      HostedShard shard = closer.keep(HostedShard.load(model, cuts[i], cuts[i + 1], one));
      modelId = shard.modelId();
      services.add(closer.keep(new PipelineService(h, List.of(shard), 2, i == 0 ? Fault.SLOW : Fault.NONE)));
      hops.add(new Route.Stage(h.peerId(), h.listenAddrs(), cuts[i], cuts[i + 1]));
    }
    services.add(closer.keep(new PipelineService(closer.host(), List.of(), 2)));
    return new Route(modelId, hops, 0);
  }

  @Test
  void aCancelDropsQueuedRoundsTruncatesTheCacheAndTheSessionGoesOn() throws Exception {
    List<PipelineService> s = new ArrayList<>();
    Route route = chain(s);
    PipelineService entry = s.get(2);
    try (PipelineTargetPass pass = PipelineTargetPass.open(entry, route, 128, F32);
        PipelineTargetPass fresh = PipelineTargetPass.open(entry, route, 128, F32)) {
      pass.await(pass.send(0, PROMPT, new int[0], 1));
      // four rounds one behind another, as the pipelined loop sends them; then the first one's
      // verdict "rejects" and everything after it is cancelled while it still waits at stage 1
      long r1 = pass.send(10, new int[] {11, 12, 13}, new int[] {12, 13, 14}, 3);
      pass.send(13, new int[] {14, 15, 16}, new int[] {15, 16, 17}, 3);
      pass.send(16, new int[] {17, 18, 19}, new int[] {18, 19, 20}, 3);
      pass.send(19, new int[] {20, 21, 22}, new int[] {21, 22, 23}, 3);
      pass.cancel(r1, 12); // tokens 11 and 12 stand
      StageSession first = s.get(0).stages().get(0).sessions.get(pass.sessionId());
      StageSession second = s.get(1).stages().get(0).sessions.get(pass.sessionId());
      awaitTrue(() -> first.kv.length() == 12 && second.kv.length() == 12,
          () -> "both stages roll the cache back to 12, have " + first.kv.length() + " and " + second.kv.length());
      long dropped = s.get(0).stats().cancelledRounds.sum() + s.get(1).stats().cancelledRounds.sum();
      assertEquals(3, dropped, "each cancelled round dropped at exactly one stage");
      assertEquals(3, s.get(0).stats().cancelledRounds.sum(), "they were still queued at the slow first stage");
      // the corrected continuation: its answer is the fresh session's on the same tokens
      long next = pass.send(12, new int[] {40, 41}, new int[] {41}, 2);
      TargetScores got = pass.await(next);
      int[] all = {5, 17, 99, 3, 250, 42, 7, 7, 120, 64, 11, 12, 40, 41};
      TargetScores want = fresh.run(0, all, new int[] {41}, 2);
      for (int row = 0; row < 2; row++) {
        assertEquals(want.argmax(row), got.argmax(row), "row " + row);
        assertEquals(want.probability(row, 41), got.probability(row, 41), 1e-5, "row " + row);
      }
      assertEquals(14, first.kv.length());
      assertEquals(14, second.kv.length());
    }
  }

  @Test
  void malformedCancelsAreRefusedWithTheirReason() throws Exception {
    List<PipelineService> s = new ArrayList<>();
    Route route = chain(s);
    PipelineService entry = s.get(2);
    try (PipelineTargetPass pass = PipelineTargetPass.open(entry, route, 128, F32)) {
      long r = pass.send(0, PROMPT, new int[0], 1);
      pass.await(r);
      pass.cancel(r + 5, 10); // a round not sent yet
      PipelineException e = assertThrows(PipelineException.class, () -> pass.await(pass.send(10, new int[] {1}, new int[0], 1)));
      assertEquals("BAD_REQUEST", e.code());
      assertTrue(e.getMessage().contains("cancel after round " + (r + 5) + ": the last round here is " + r),
          e.getMessage());
    }
    try (PipelineTargetPass pass = PipelineTargetPass.open(entry, route, 128, F32)) {
      long r = pass.send(0, PROMPT, new int[0], 1);
      pass.await(r);
      pass.cancel(r, 11); // keep beyond the 10 cached positions
      PipelineException e = assertThrows(PipelineException.class, () -> pass.await(pass.send(10, new int[] {1}, new int[0], 1)));
      assertEquals("BAD_REQUEST", e.code());
      assertTrue(e.getMessage().contains("cancel keep 11 is beyond the 10 positions"), e.getMessage());
      // refused before anything changed: the stage's session is still open, its cache as it was plus the round
      StageSession first = s.get(0).stages().get(0).sessions.get(pass.sessionId());
      assertTrue(first != null && first.live(), "the session survives a refused cancel");
      awaitTrue(() -> first.kv.length() == 11, () -> "the round after the refused cancel ran: " + first.kv.length());
    }
  }
}
