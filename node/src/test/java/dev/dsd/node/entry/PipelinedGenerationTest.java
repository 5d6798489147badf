package dev.dsd.node.entry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.testing.StageSwarm;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The shipped pair through 4 in-process stages with several rounds in flight: greedy output is the
 * target's own, token for token, on 20 held-out prompts, with the window chosen by the controller
 * and with a fixed one; rejections cancel rounds in flight at the stages.
 */
class PipelinedGenerationTest {
  static final int PROMPTS = 20;
  static final int NEW_TOKENS = 32;
  @RegisterExtension final Closer closer = new Closer();

  static Path models() {
    return Path.of(System.getProperty("dsd.models", "../models"));
  }

  @Test
  void pipelinedGreedyIsTheTargetAloneOnTwentyPrompts() throws Exception {
    Path target = models().resolve("pycoder-target");
    Path draft = models().resolve("pycoder-draft");
    Path promptsFile = models().resolve("heldout-prompts.json");
    assertTrue(Files.isDirectory(target) && Files.isDirectory(draft) && Files.isRegularFile(promptsFile),
        "the bundled models and held-out prompts are missing under " + models().toAbsolutePath());
    List<String> prompts = new ArrayList<>();
    new ObjectMapper().readTree(promptsFile.toFile()).get("prompts").forEach(n -> prompts.add(n.asText()));
    Checkpoint ck = closer.keep(Checkpoint.open(target));
    RunnerOptions one = RunnerOptions.defaults().withThreads(1);
    StageSwarm swarm = StageSwarm.start(closer, target, StageSwarm.even(ck.config().numLayers(), 4), one);
    DraftModel dm = closer.keep(DraftModel.load(draft, ck.config().vocabSize(), ck.tokenizer().vocabSize(), 1));
    LocalGenerator local = closer.keep(new LocalGenerator(target, 1));
    PipelineGenerator gen = new PipelineGenerator(swarm.entry(), ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(swarm.route()), dm::newDrafter,
        PipelineTargetPass.Options.greedy().withActivations(dev.dsd.node.pipeline.proto.DType.F32));
    long drafted = 0;
    long accepted = 0;
    for (int i = 0; i < PROMPTS; i++) {
      int[] want = local.generate(GenerationRequest.greedy(prompts.get(i), NEW_TOKENS), TokenSink.NONE).tokenIds();
      // auto (the controller's k and depth, synchronous where it expects no gain) on even prompts; on odd
      // ones fixed windows with rounds in flight whatever the controller thinks: k = 3 x 4 rounds, k = 6 x 2
      int k = i % 2 == 0 ? GenerationRequest.AUTO : i % 4 == 1 ? 3 : 6;
      gen.withFixedDepth(i % 2 == 0 ? 0 : i % 4 == 1 ? 4 : 2);
      GenerationResult got = gen.generate(new GenerationRequest(prompts.get(i), NEW_TOKENS, 0, 1, 0, k, false,
          List.of()).withPipelined(true), TokenSink.NONE);
      assertArrayEquals(want, got.tokenIds(), "held-out prompt " + i + " k=" + k);
      drafted += got.draftedTokens();
      accepted += got.acceptedTokens();
    }
    long cancelled = 0;
    for (PipelineService s : swarm.stages()) {
      cancelled += s.stats().cancelledRounds.sum();
    }
    System.out.printf("pipelined, 4 stages: acceptance %d/%d, rounds cancelled at stages %d%n", accepted, drafted,
        cancelled);
    assertTrue(accepted > 0 && accepted < drafted, "rollback exercised: " + accepted + "/" + drafted);
    assertTrue(cancelled > 0, "rounds in flight were cancelled at the stages");
  }
}
