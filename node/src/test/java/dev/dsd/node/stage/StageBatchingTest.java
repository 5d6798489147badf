package dev.dsd.node.stage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.entry.PipelineTargetPass;
import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.pipeline.PipelineException;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.pipeline.PipelineStats;
import dev.dsd.node.routing.NoRouteException;
import dev.dsd.node.routing.Route;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** Several sessions' rounds in one call at each stage: same tokens, same failover, same quotas. */
class StageBatchingTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();
  // none of these meets a near-tie of the random model's top two logits within 40 tokens (class A:
  // does, by 2e-4, where any change of summation order may pick either)
  static final String[] PROMPTS = {"def f(x):", "the theory of ", "aaaa bbbb aaaa", "x = [1, 2, 3]\n", "import os",
      "print(1)", "while True:", "return None"};

  Path target() throws Exception {
    return TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
  }

  static GenerationRequest greedy(String prompt, int max, int k) {
    return new GenerationRequest(prompt, max, 0, 1, 0, k, false, List.of());
  }

  /** Rows the stage's calls carried beyond one per call: > 0 once any call batched two sessions. */
  static double extraRows(PipelineService stage) {
    PipelineStats s = stage.stats();
    return s.batchRows.sum() - s.batchRows.count();
  }

  @Test
  void concurrentGreedyGenerationsEqualEachAlone() throws Exception {
    Path model = target();
    StageSwarm s = StageSwarm.start(closer, model, new int[] {0, 2, 4}, RunnerOptions.defaults().withThreads(1));
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    DraftModel same = closer.keep(DraftModel.load(model, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    LocalGenerator local = closer.keep(new LocalGenerator(model, 1));
    // the target drafting for itself: every draft accepted, rounds of k+1 positions; k differs per
    // session, so rows are ragged, and prompts differ in length, so past lengths are too
    PipelineGenerator gen = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(s.route()), (req, cap, usable) -> same.newDrafter(req, cap, usable),
        PipelineTargetPass.Options.greedy());
    int[][] want = new int[PROMPTS.length][];
    for (int i = 0; i < PROMPTS.length; i++) {
      want[i] = local.generate(greedy(PROMPTS[i], 40, 0), TokenSink.NONE).tokenIds();
    }
    ExecutorService clients = Executors.newFixedThreadPool(PROMPTS.length);
    try {
      for (int attempt = 0; attempt < 3 && extraRows(s.stages().get(0)) == 0; attempt++) {
        List<Future<GenerationResult>> runs = new ArrayList<>();
        for (int i = 0; i < PROMPTS.length; i++) {
          GenerationRequest req = greedy(PROMPTS[i], 40, i % 4);
          runs.add(clients.submit(() -> gen.generate(req, TokenSink.NONE)));
        }
        for (int i = 0; i < PROMPTS.length; i++) {
          assertArrayEquals(want[i], runs.get(i).get().tokenIds(), "prompt '" + PROMPTS[i] + "' k=" + (i % 4));
        }
      }
    } finally {
      clients.shutdownNow();
    }
    for (PipelineService st : s.stages()) {
      assertTrue(extraRows(st) > 0, "some call at every stage carried several sessions: rows "
          + st.stats().batchRows.sum() + " in " + st.stats().batchRows.count() + " calls");
    }
  }

  @Test
  void aStageThatDiesFailsOverItsSessionsAndNoOtherSessionNotices() throws Exception {
    Path model = target();
    RunnerOptions o = RunnerOptions.defaults().withThreads(1);
    StageSwarm s = StageSwarm.start(closer, model, new int[] {0, 2, 4}, o);
    NettyHost spareHost = closer.host();
    HostedShard spare = closer.keep(HostedShard.load(model, 2, 4, o));
    closer.keep(new PipelineService(spareHost, List.of(spare), 2));
    Route.Stage first = s.route().stages().get(0);
    Route.Stage doomed = s.route().stages().get(1);
    Route.Stage other = new Route.Stage(spareHost.peerId(), spareHost.listenAddrs(), 2, 4);
    Route viaOther = new Route(s.route().modelId(), List.of(first, other), 0);
    // the victim's sessions go through the doomed stage and fail over to the other one; the
    // bystanders share the first stage (and its batched calls) but have nowhere to fail over to
    PipelineGenerator.RouteSource failingOver = new PipelineGenerator.RouteSource() {
      @Override
      public Route route(Set<PeerId> avoid) {
        if (avoid.contains(first.peer())) {
          throw new NoRouteException("the first stage is the only one");
        }
        return avoid.contains(doomed.peer()) ? viaOther : s.route();
      }
    };
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    LocalGenerator local = closer.keep(new LocalGenerator(model, 1));
    AtomicInteger victimFailovers = new AtomicInteger();
    PipelineGenerator victims = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(), failingOver,
        PipelineGenerator.DrafterFactory.NONE, PipelineTargetPass.Options.greedy())
        .withResilience((failovers, stall, checks) -> victimFailovers.addAndGet(failovers));
    PipelineGenerator bystanders = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(viaOther), PipelineGenerator.DrafterFactory.NONE,
        PipelineTargetPass.Options.greedy());
    int n = 3;
    ExecutorService clients = Executors.newFixedThreadPool(2 * n);
    try {
      AtomicInteger streamed = new AtomicInteger();
      List<Future<GenerationResult>> victimRuns = new ArrayList<>();
      List<Future<GenerationResult>> bystanderRuns = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        GenerationRequest req = greedy(PROMPTS[i], 60, 0);
        victimRuns.add(clients.submit(() -> victims.generate(req, (text, ids) -> {
          if (streamed.incrementAndGet() == 3 * n) { // every session is mid-generation
            s.stages().get(1).host().close();
          }
          return true;
        })));
        GenerationRequest other2 = greedy(PROMPTS[n + i], 60, 0);
        bystanderRuns.add(clients.submit(() -> bystanders.generate(other2, TokenSink.NONE)));
      }
      for (int i = 0; i < n; i++) {
        assertArrayEquals(local.generate(greedy(PROMPTS[i], 60, 0), TokenSink.NONE).tokenIds(),
            victimRuns.get(i).get().tokenIds(), "victim " + i + " failed over with its output unchanged");
        assertArrayEquals(local.generate(greedy(PROMPTS[n + i], 60, 0), TokenSink.NONE).tokenIds(),
            bystanderRuns.get(i).get().tokenIds(), "bystander " + i + " went on undisturbed");
      }
    } finally {
      clients.shutdownNow();
    }
    assertTrue(victimFailovers.get() >= 1, "the victims failed over: " + victimFailovers.get());
    assertTrue(extraRows(s.stages().get(0)) > 0, "the first stage batched sessions together");
  }

  @Test
  void perPeerQuotasHoldWhileRoundsAreBatched() throws Exception {
    Path model = target();
    // 4 sessions in all, so one peer may hold 2
    RunnerOptions o = new RunnerOptions(1, 4, RunnerOptions.DEFAULT_KV_BUDGET_BYTES, Duration.ofMinutes(1));
    StageSwarm s = StageSwarm.start(closer, model, new int[] {0, 4}, o);
    PipelineService otherEntry = closer.keep(new PipelineService(closer.host(), List.of(), 2));
    PipelineTargetPass.Options opts = PipelineTargetPass.Options.greedy();
    PipelineTargetPass a = closer.keep(PipelineTargetPass.open(s.entry(), s.route(), 64, opts));
    PipelineTargetPass b = closer.keep(PipelineTargetPass.open(s.entry(), s.route(), 64, opts));
    a.run(0, new int[] {1, 2, 3}, new int[0], 1);
    b.run(0, new int[] {4, 5}, new int[0], 1);
    PipelineException refused = assertThrows(PipelineException.class, () -> closer.keep(
        PipelineTargetPass.open(s.entry(), s.route(), 64, opts)).run(0, new int[] {1}, new int[0], 1));
    assertEquals("LIMIT", refused.code(), refused.getMessage());
    assertTrue(refused.getMessage().contains("limit 2"), refused.getMessage());
    // another peer still gets its share, and its rounds run alongside the first peer's
    PipelineTargetPass c = closer.keep(PipelineTargetPass.open(otherEntry, s.route(), 64, opts));
    ExecutorService clients = Executors.newFixedThreadPool(3);
    try {
      for (int round = 0; round < 20; round++) {
        int keep = 3 + round;
        int cKeep = round;
        Future<?> fa = clients.submit(() -> a.run(keep, new int[] {7}, new int[0], 1));
        Future<?> fb = clients.submit(() -> b.run(keep - 1, new int[] {8}, new int[0], 1));
        Future<?> fc = clients.submit(() -> c.run(cKeep, new int[] {9}, new int[0], 1));
        fa.get();
        fb.get();
        fc.get();
      }
    } finally {
      clients.shutdownNow();
    }
    assertEquals(3, s.stages().get(0).stageSessionCount());
  }
}
