package dev.dsd.node.entry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.Drafter;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.PipelinedLoop;
import dev.dsd.node.generate.SpeculativeLoop;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.routing.NoRouteException;
import dev.dsd.node.routing.Route;
import dev.dsd.node.stage.HostedShard;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import dev.dsd.verification.acceptance.GreedyAcceptance;
import dev.dsd.verification.window.PipelineController;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A stage dies while four rounds of the generation are in flight: the session fails over to a
 * replica, replays what stands plus the awaited round and re-sends the rounds after it, and the
 * greedy output is the target's own, token for token.
 */
class PipelinedFailoverTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();

  @Test
  void aStageDyingWithRoundsInFlightLeavesTheOutputUnchanged() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
    RunnerOptions one = RunnerOptions.defaults().withThreads(1);
    StageSwarm s = StageSwarm.start(closer, model, new int[] {0, 2, 4}, one);
    NettyHost spareHost = closer.host();
    closer.keep(new PipelineService(spareHost, List.of(closer.keep(HostedShard.load(model, 2, 4, one))), 2));
    Route.Stage first = s.route().stages().get(0);
    Route.Stage doomed = s.route().stages().get(1);
    Route viaSpare = new Route(s.route().modelId(), List.of(first,
        new Route.Stage(spareHost.peerId(), spareHost.listenAddrs(), 2, 4)), 0);
    PipelineGenerator.RouteSource routes = new PipelineGenerator.RouteSource() {
      @Override
      public Route route(Set<PeerId> avoid) {
        if (avoid.contains(first.peer())) {
          throw new NoRouteException("the first stage is the only one");
        }
        return avoid.contains(doomed.peer()) ? viaSpare : s.route();
      }
    };
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    // the target drafting for itself, with every fifth draft spoiled: drafts stand and are rejected
    DraftModel dm = closer.keep(DraftModel.load(model, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    LocalGenerator local = closer.keep(new LocalGenerator(model, 1));
    String prompt = "def f(x):";
    int max = 60;
    int[] want = local.generate(GenerationRequest.greedy(prompt, max), TokenSink.NONE).tokenIds();
    int[] ids = ck.tokenizer().encode(prompt);
    int capacity = ids.length + max + 8;
    GenerationRequest req = GenerationRequest.greedy(prompt, max).withSpeculation(3);
    PipelineTargetPass.Options opts = PipelineTargetPass.Options.greedy().withActivations(DType.F32);
    AtomicInteger streamed = new AtomicInteger();
    try (ResilientTargetPass target = new ResilientTargetPass(routes, null,
            route -> PipelineTargetPass.open(s.entry(), route, capacity, opts), 0, 0);
        Drafter drafter = new Spoiled(dm.newDrafter(req, capacity, ck.config().vocabSize()), 5,
            ck.config().vocabSize())) {
      TokenSink killer = (text, tokens) -> {
        if (streamed.incrementAndGet() == 12) {
          s.stages().get(1).host().close();
        }
        return true;
      };
      GenerationResult got = new PipelinedLoop(ck.tokenizer(), new HashSet<>(ck.config().eosTokenIds())).run(req, ids,
          target, drafter, new GreedyAcceptance(), null, new PipelineController.Choice(3, 4), capacity, killer,
          SpeculativeLoop.RoundListener.NONE, System.nanoTime());
      assertArrayEquals(want, got.tokenIds(), "failed over with rounds in flight, output unchanged");
      assertTrue(target.failovers() >= 1, "it failed over: " + target.failovers());
      assertTrue(got.acceptedTokens() > 0 && got.acceptedTokens() < got.draftedTokens(),
          "drafts both stood and were rejected: " + got.acceptedTokens() + "/" + got.draftedTokens());
    }
  }

  /** Proposes what the wrapped drafter does, but every {@code every}-th draft replaced by another token. */
  static final class Spoiled implements Drafter {
    private final Drafter d;
    private final int every;
    private final int vocab;
    private int count;

    Spoiled(Drafter d, int every, int vocab) {
      this.d = d;
      this.every = every;
      this.vocab = vocab;
    }

    @Override
    public void start(int[] prompt) {
      d.start(prompt);
    }

    @Override
    public int[] propose(int k) {
      int[] out = d.propose(k);
      for (int i = 0; i < out.length; i++) {
        if (++count % every == 0) {
          out[i] = (out[i] + 1) % vocab;
        }
      }
      return out;
    }

    @Override
    public double[][] lastDistributions() {
      return null;
    }

    @Override
    public void assume(int contextBefore, int[] drafts) {
      d.assume(contextBefore, drafts);
    }

    @Override
    public void accepted(int contextBefore, int[] drafts, int n, int next) {
      d.accepted(contextBefore, drafts, n, next);
    }

    @Override
    public void close() {
      d.close();
    }
  }
}
