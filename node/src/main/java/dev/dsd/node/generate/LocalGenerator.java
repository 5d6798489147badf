package dev.dsd.node.generate;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.AdaptiveAcceptance;
import dev.dsd.verification.importance.TokenImportance;
import dev.dsd.verification.acceptance.GreedyAcceptance;
import dev.dsd.verification.acceptance.SpeculativeSampling;
import dev.dsd.verification.window.AdaptiveWindow;
import dev.dsd.verification.window.WindowPolicy;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.UUID;

/**
 * Generation in this process on the whole model (one shard {@code [0, L)}), optionally with
 * speculative decoding by a local draft model: each round the draft proposes k tokens and the
 * target checks {@code [last accepted token, d1..dk]} in one pass; rejected drafts are dropped by
 * truncating the KV caches. Greedy output is identical to the target alone; sampled output has the
 * target's distribution (speculative sampling).
 */
public final class LocalGenerator implements Generator {
  /** Largest window {@code --spec auto} may choose. */
  public static final int MAX_AUTO_WINDOW = 16;
  /** Adaptive verification keeps an unimportant draft token when the target gives it at least this. */
  public static final double ADAPTIVE_MIN_PROBABILITY = 0.1;
  private TokenImportance importance;
  private final Checkpoint checkpoint;
  private final ShardRunner runner;
  private final Checkpoint draftCheckpoint;
  private final ShardRunner draftRunner;

  public LocalGenerator(Path modelDir, int threads) {
    this(modelDir, null, threads);
  }

  /** {@code draftDir} may be null; a draft must share the target's tokenizer vocabulary. */
  public LocalGenerator(Path modelDir, Path draftDir, int threads) {
    Checkpoint ck = null;
    ShardRunner r = null;
    Checkpoint dck = null;
    try {
      ck = Checkpoint.open(modelDir);
      ModelConfig c = ck.config();
      r = new ShardRunner(c, ck.weights(), 0, c.numLayers(), RunnerOptions.defaults().withThreads(threads));
      ShardRunner dr = null;
      if (draftDir != null) {
        dck = Checkpoint.open(draftDir);
        if (dck.config().vocabSize() != c.vocabSize() || dck.tokenizer().vocabSize() != ck.tokenizer().vocabSize()) {
          throw new ModelFormatException(draftDir + ": the draft's vocabulary (" + dck.config().vocabSize()
              + ") differs from the target's (" + c.vocabSize() + ")");
        }
        dr = new ShardRunner(dck.config(), dck.weights(), 0, dck.config().numLayers(),
            RunnerOptions.defaults().withThreads(threads));
      }
      this.checkpoint = ck;
      this.runner = r;
      this.draftCheckpoint = dck;
      this.draftRunner = dr;
    } catch (RuntimeException e) {
      if (r != null) {
        r.close();
      }
      if (ck != null) {
        ck.close();
      }
      if (dck != null) {
        dck.close();
      }
      throw e;
    }
  }

  public Tokenizer tokenizer() {
    return checkpoint.tokenizer();
  }

  public ModelConfig config() {
    return checkpoint.config();
  }

  @Override
  public GenerationResult generate(GenerationRequest req, TokenSink sink) {
    ModelConfig c = checkpoint.config();
    int[] prompt = PromptCheck.encode(checkpoint.tokenizer(), req, c);
    boolean auto = req.speculation() == GenerationRequest.AUTO;
    int k = draftRunner == null ? 0 : auto ? MAX_AUTO_WINDOW : req.speculation();
    WindowPolicy window = auto ? new AdaptiveWindow(1, MAX_AUTO_WINDOW) : WindowPolicy.fixed(k);
    int usable = Math.min(c.vocabSize(), checkpoint.tokenizer().vocabSize());
    AcceptanceRule rule = rule(req, usable);
    // Verification writes k positions beyond what is kept, so the caches need room for them too.
    int capacity = Math.min(c.maxPositionEmbeddings(), prompt.length + req.maxTokens() + k);
    String id = UUID.randomUUID().toString();
    SpeculativeLoop loop = new SpeculativeLoop(checkpoint.tokenizer(), new HashSet<>(c.eosTokenIds()));
    try (TargetPass target = new LocalTargetPass(runner, runner.openSession(id, "local", capacity), rule, usable);
        Drafter drafter = draftRunner == null ? null : new ModelDrafter(draftRunner,
            draftRunner.openSession(id, "local", Math.min(capacity, draftRunner.config().maxPositionEmbeddings())),
            req.temperature(), req.topP(), req.seed(), usable)) {
      return loop.run(req, prompt, target, drafter, rule, window, capacity, sink, SpeculativeLoop.RoundListener.NONE);
    }
  }

  /** The acceptance rule a request asks for: greedy exact, speculative sampling or adaptive (lossy). */
  public AcceptanceRule rule(GenerationRequest req, int usable) {
    return req.adaptiveVerification()
        ? new AdaptiveAcceptance(importance(usable), ADAPTIVE_MIN_PROBABILITY, req.temperature(), req.topP(), req.seed())
        : req.temperature() == 0 ? new GreedyAcceptance()
        : new SpeculativeSampling(req.temperature(), req.topP(), req.seed());
  }

  private synchronized TokenImportance importance(int usable) {
    if (importance == null) {
      Tokenizer t = checkpoint.tokenizer();
      importance = TokenImportance.of(usable, id -> t.decode(new int[] {id}), TokenImportance.Weights.DEFAULT);
    }
    return importance;
  }

  @Override
  public void close() {
    runner.close();
    checkpoint.close();
    if (draftRunner != null) {
      draftRunner.close();
      draftCheckpoint.close();
    }
  }
}
