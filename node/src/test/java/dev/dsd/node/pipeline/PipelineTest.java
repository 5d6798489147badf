package dev.dsd.node.pipeline;

import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.entry.PipelineTargetPass;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.routing.Route;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import dev.dsd.p2p.core.PeerId;
import java.util.HashSet;
import java.util.Set;

/** A target cut into stages on separate hosts (one JVM, loopback), with an entry that serves no layers. */
class PipelineTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();
  static final String[] PROMPTS = {"def f(x):", "the theory of ", "aaaa bbbb aaaa", "x = [1, 2, 3]\n"};


  <T extends AutoCloseable> T keep(T c) {
    return closer.keep(c);
  }

  Path target() throws Exception {
    return TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
  }

  StageSwarm swarm(Path model, int[] cuts) {
    return swarm(model, cuts, RunnerOptions.defaults().withThreads(1));
  }

  StageSwarm swarm(Path model, int[] cuts, RunnerOptions options) {
    return StageSwarm.start(closer, model, cuts, options);
  }

  static GenerationRequest greedy(String prompt, int max, int k) {
    return new GenerationRequest(prompt, max, 0, 1, 0, k, false, List.of());
  }

  @Test
  void greedyThroughFourStagesIsTheTargetAlone() throws Exception {
    Path model = target();
    Path draftDir = TinyCheckpoint.builder().layers(1).hidden(16).heads(2).kvHeads(1).maxPositions(256).seed(5)
        .writeTo(tmp.resolve("draft"));
    StageSwarm s = swarm(model, new int[] {0, 1, 2, 3, 4});
    Checkpoint ck = keep(Checkpoint.open(model));
    // a random draft is (almost) always rejected, the target as its own draft always accepted:
    // both ends of the rollback are exercised
    DraftModel random = keep(DraftModel.load(draftDir, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    DraftModel same = keep(DraftModel.load(model, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    LocalGenerator local = keep(new LocalGenerator(model, 1));
    for (DType dtype : new DType[] {DType.F32, DType.F16}) {
      PipelineGenerator gen = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(), PipelineGenerator.RouteSource.of(s.route()),
          (req, cap, usable) -> (req.seed() & 1) == 0 ? random.newDrafter(req, cap, usable) : same.newDrafter(req, cap, usable),
          PipelineTargetPass.Options.greedy().withActivations(dtype));
      long drafted = 0;
      long accepted = 0;
      for (String p : PROMPTS) {
        GenerationResult want = local.generate(greedy(p, 40, 0), TokenSink.NONE);
        for (int k : new int[] {0, 3, GenerationRequest.AUTO, GenerationRequest.LEARNED}) {
          for (long which : new long[] {0, 1}) {
          GenerationRequest req = new GenerationRequest(p, 40, 0, 1, which, k, false, List.of());
          GenerationResult got = gen.generate(req, TokenSink.NONE);
          assertArrayEquals(want.tokenIds(), got.tokenIds(), dtype + " prompt '" + p + "' k=" + k);
          assertEquals(4, got.route().size());
          assertTrue(got.bytesSent() > 0);
          drafted += got.draftedTokens();
          accepted += got.acceptedTokens();
          }
        }
      }
      assertTrue(accepted > 0 && accepted < drafted, "rejections and acceptances both happened: " + accepted + "/" + drafted);
    }
    for (PipelineService st : s.stages()) {
      awaitZero(st::stageSessionCount, "every stage frees its sessions once the entry closes them");
    }
    assertEquals(0, s.entry().entrySessionCount());
  }

  @Test
  void sampledGenerationThroughThePipelineMatchesLocalBySeed() throws Exception {
    Path model = target();
    StageSwarm s = swarm(model, new int[] {0, 2, 4});
    Checkpoint ck = keep(Checkpoint.open(model));
    DraftModel draft = keep(DraftModel.load(model, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    LocalGenerator local = keep(new LocalGenerator(model, model, 1));
    PipelineGenerator gen = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(), PipelineGenerator.RouteSource.of(s.route()), draft::newDrafter,
        PipelineTargetPass.Options.greedy().withActivations(DType.F32));
    GenerationRequest req = new GenerationRequest("import os", 30, 0.8, 0.95, 42, 3, false, List.of());
    // the same seeds, the same summary-based verdicts: the pipeline samples exactly what local does
    assertArrayEquals(local.generate(req, TokenSink.NONE).tokenIds(), gen.generate(req, TokenSink.NONE).tokenIds());
  }

  @Test
  void aStageCanCoordinateARouteThroughItself() throws Exception {
    Path model = target();
    StageSwarm s = swarm(model, new int[] {0, 2, 4});
    Checkpoint ck = keep(Checkpoint.open(model));
    LocalGenerator local = keep(new LocalGenerator(model, 1));
    for (PipelineService entry : s.stages()) { // first and last stage each as the entry
      PipelineGenerator gen = new PipelineGenerator(entry, ck.tokenizer(), ck.config(), PipelineGenerator.RouteSource.of(s.route()),
          PipelineGenerator.DrafterFactory.NONE, PipelineTargetPass.Options.greedy());
      assertArrayEquals(local.generate(greedy("abc", 12, 0), TokenSink.NONE).tokenIds(),
          gen.generate(greedy("abc", 12, 0), TokenSink.NONE).tokenIds());
    }
  }

  @Test
  void stagesDropSessionsTheirEntryAbandoned() throws Exception {
    Path model = target();
    RunnerOptions quick = new RunnerOptions(1, 8, RunnerOptions.DEFAULT_KV_BUDGET_BYTES, Duration.ofSeconds(1));
    StageSwarm s = swarm(model, new int[] {0, 2, 4}, quick);
    PipelineTargetPass pass = keep(PipelineTargetPass.open(s.entry(), s.route(), 64, PipelineTargetPass.Options.greedy()));
    pass.run(0, new int[] {1, 2, 3}, new int[0], 1);
    assertEquals(1, s.stages().get(0).stageSessionCount());
    awaitZero(s.stages().get(0)::stageSessionCount, "the first stage expires the idle session");
    awaitZero(s.stages().get(1)::stageSessionCount, "and so does the last");
    PipelineException e = assertThrows(PipelineException.class, () -> pass.run(3, new int[] {4}, new int[0], 1));
    assertTrue(e.getMessage().contains("expired") || e.getMessage().contains("closed"), e.getMessage());
  }

  @Test
  void onePeerCannotTakeTheWholeStage() throws Exception {
    Path model = target();
    RunnerOptions four = new RunnerOptions(1, 4, RunnerOptions.DEFAULT_KV_BUDGET_BYTES, RunnerOptions.DEFAULT_IDLE_TIMEOUT);
    StageSwarm s = swarm(model, new int[] {0, 4}, four);
    PipelineTargetPass.Options o = PipelineTargetPass.Options.greedy();
    PipelineTargetPass first = PipelineTargetPass.open(s.entry(), s.route(), 32, o);
    keep(PipelineTargetPass.open(s.entry(), s.route(), 32, o));
    PipelineException e = assertThrows(PipelineException.class, () -> PipelineTargetPass.open(s.entry(), s.route(), 32, o));
    assertEquals("LIMIT", e.code());
    assertTrue(e.getMessage().contains("already holds 2 sessions here, limit 2"), e.getMessage());
    first.close();
    awaitZero(() -> s.stages().get(0).stageSessionCount() - 1, "the closed session is released");
    keep(PipelineTargetPass.open(s.entry(), s.route(), 32, o)).run(0, new int[] {5, 6}, new int[0], 1);
  }

  @Test
  void aDeadStageFailsTheRoundWithItsName() throws Exception {
    Path model = target();
    StageSwarm s = swarm(model, new int[] {0, 2, 4});
    Checkpoint ck = keep(Checkpoint.open(model));
    PipelineTargetPass.Options o = new PipelineTargetPass.Options(DType.F16, 0, 1, false, Duration.ofSeconds(5));
    PipelineGenerator gen = new PipelineGenerator(s.entry(), ck.tokenizer(), ck.config(), PipelineGenerator.RouteSource.of(s.route()),
        PipelineGenerator.DrafterFactory.NONE, o);
    gen.generate(greedy("abc", 5, 0), TokenSink.NONE);
    s.stages().get(1).host().close();
    long t0 = System.nanoTime();
    PipelineException e = assertThrows(PipelineException.class, () -> gen.generate(greedy("abc", 5, 0), TokenSink.NONE));
    assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "failed fast, not by timeout: " + e.getMessage());
    assertEquals(s.route().stages().get(1).peer(), e.failedPeer(), e.getMessage());
    awaitZero(s.stages().get(0)::stageSessionCount, "the first stage frees the broken session");
  }

  @Test
  void onlyTheStageThatDiedIsBlamed() throws Exception {
    Path model = target();
    // a short timeout: once every error has arrived, the next round's wait ends the listening. Not
    // shorter: the same timeout bounds opening the session, which took over 1 s on a loaded machine
    PipelineTargetPass.Options o = new PipelineTargetPass.Options(DType.F16, 0, 1, false, Duration.ofSeconds(3));
    for (int victim = 0; victim < 3; victim++) {
      for (boolean graceful : new boolean[] {false, true}) {
        StageSwarm s = swarm(model, new int[] {0, 1, 3, 4});
        PipelineTargetPass pass = keep(PipelineTargetPass.open(s.entry(), s.route(), 64, o));
        pass.run(0, new int[] {1, 2, 3}, new int[0], 1);
        PipelineService dead = s.stages().get(victim);
        if (graceful) {
          dead.close(); // a node shutting down: ends its sessions, then goes
          dead.host().close();
        } else {
          dead.host().close(); // connections drop under live sessions
        }
        for (PipelineService st : s.stages()) {
          awaitZero(st::stageSessionCount, "the broken session is freed everywhere");
        }
        // every error the entry heard, in order: each must name the dead peer, none its neighbours
        Set<PeerId> blamed = new HashSet<>();
        List<String> heard = new ArrayList<>();
        for (int round = 0; round < 10; round++) {
          PipelineException e = assertThrows(PipelineException.class, () -> pass.run(3, new int[] {4}, new int[0], 1));
          if (e.code().equals("TIMEOUT")) {
            break;
          }
          blamed.add(e.failedPeer());
          heard.add(e.code() + " " + e.getMessage());
        }
        assertEquals(Set.of(s.route().stages().get(victim).peer()), blamed,
            "stage " + victim + " died" + (graceful ? " gracefully" : "") + "; heard " + heard + " on " + s.route());
      }
    }
  }

  /** Closing travels down the chain asynchronously; give it a moment, not forever. */
  static void awaitZero(java.util.function.IntSupplier count, String what) throws InterruptedException {
    long deadline = System.nanoTime() + 5_000_000_000L;
    while (count.getAsInt() != 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertEquals(0, count.getAsInt(), what);
  }
}
