package dev.dsd.node.generate;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.processing.PenaltyState;
import dev.dsd.verification.window.AdaptiveWindow;
import dev.dsd.verification.window.WindowMemory;
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
  private final Checkpoint checkpoint;
  private final ShardRunner runner;
  private final DraftModel draft;
  private final RuleChoice rules;
  private final WindowMemory windows = new WindowMemory(0, MAX_AUTO_WINDOW);
  private final WindowMemory learnedWindows = WindowMemory.learned(0, MAX_AUTO_WINDOW);
  private final java.util.concurrent.ConcurrentHashMap<String, dev.dsd.verification.tree.AutoTreeBudget> treeBudgets =
      new java.util.concurrent.ConcurrentHashMap<>();

  public LocalGenerator(Path modelDir, int threads) {
    this(modelDir, null, threads);
  }

  /** {@code draftDir} may be null; a draft must share the target's tokenizer vocabulary. */
  public LocalGenerator(Path modelDir, Path draftDir, int threads) {
    this(modelDir, draftDir, RunnerOptions.defaults().withThreads(threads));
  }

  /**
   * The target runs with {@code options} (threads, weight format, weights cache); the draft, small by
   * design, in f32 with the same threads.
   */
  public LocalGenerator(Path modelDir, Path draftDir, RunnerOptions options) {
    int threads = options.intraOpThreads();
    Checkpoint ck = Checkpoint.open(modelDir);
    ShardRunner r = null;
    try {
      ModelConfig c = ck.config();
      r = new ShardRunner(c, ck.weights(), 0, c.numLayers(), options, options.cacheDir() == null ? null : ck.modelId());
      this.draft = draftDir == null ? null : DraftModel.load(draftDir, c.vocabSize(), ck.tokenizer().vocabSize(), threads);
      this.checkpoint = ck;
      this.runner = r;
      this.rules = new RuleChoice(ck.tokenizer(), Math.min(c.vocabSize(), ck.tokenizer().vocabSize()),
          AdaptiveCalibration.maxGap(modelDir));
    } catch (RuntimeException e) {
      if (r != null) {
        r.close();
      }
      ck.close();
      throw e;
    }
  }

  /** The draft model this generator speculates with, or null. */
  public DraftModel draft() {
    return draft;
  }

  public Tokenizer tokenizer() {
    return checkpoint.tokenizer();
  }

  public ModelConfig config() {
    return checkpoint.config();
  }

  @Override
  public GenerationResult generate(GenerationRequest req, TokenSink sink) {
    return generate(req, sink, SpeculativeLoop.RoundListener.NONE);
  }

  /** As {@link #generate(GenerationRequest, TokenSink)}, telling {@code rounds} how each round went (the simulator's traces). */
  public GenerationResult generate(GenerationRequest req, TokenSink sink, SpeculativeLoop.RoundListener rounds) {
    return generate(req, sink, rounds, this.rules);
  }

  /** How this generator picks acceptance rules (its adaptive max gap is the model's calibrated one). */
  public RuleChoice rules() {
    return rules;
  }

  /** As above with another rule choice, e.g. {@link RuleChoice#withAdaptiveMaxGap} in a calibration sweep. */
  public GenerationResult generate(GenerationRequest req, TokenSink sink, SpeculativeLoop.RoundListener rounds,
      RuleChoice rules) {
    long t0 = System.nanoTime();
    ModelConfig c = checkpoint.config();
    int[] prompt = PromptCheck.encode(checkpoint.tokenizer(), req, c);
    boolean auto = req.speculation() == GenerationRequest.AUTO || req.speculation() == GenerationRequest.LEARNED;
    WindowMemory windows = req.speculation() == GenerationRequest.LEARNED ? learnedWindows : this.windows;
    int k = draft == null ? 0 : auto ? MAX_AUTO_WINDOW : req.speculation();
    if (k != 0 && req.tree() != 0 && !req.penalties().active() && req.logprobs() == GenerationRequest.NO_LOGPROBS) {
      return generateTree(req, prompt, sink, rounds, rules, t0);
    }
    // auto carries its estimates across requests (this generator is one route; sampling accepts far less than
    // greedy, so each temperature keeps its own) and may turn drafting off
    AdaptiveWindow adaptive = auto ? windows.start("t=" + req.temperature()) : null;
    WindowPolicy window = auto ? adaptive : WindowPolicy.fixed(k);
    int usable = Math.min(c.vocabSize(), checkpoint.tokenizer().vocabSize());
    AcceptanceRule rule = rules.rule(req);
    // Verification writes k positions beyond what is kept, so the caches need room for them too.
    int capacity = Math.min(c.maxPositionEmbeddings(), prompt.length + req.maxTokens() + k);
    String id = UUID.randomUUID().toString();
    SpeculativeLoop loop = new SpeculativeLoop(checkpoint.tokenizer(), new HashSet<>(c.eosTokenIds()));
    try (TargetPass target = new LocalTargetPass(runner, runner.openSession(id, "local", capacity), rule, usable,
            req.penalties().active() ? new PenaltyState(req.penalties(), prompt.length, c.vocabSize(), capacity) : null);
        Drafter drafter = draft == null ? null : draft.newDrafter(req, capacity, usable)) {
      GenerationResult r = loop.run(req, prompt, target, drafter, rule, window, capacity, sink, rounds, t0);
      if (adaptive != null) {
        windows.finish("t=" + req.temperature(), adaptive);
      }
      return r;
    }
  }

  /** Token-tree speculation ({@link GenerationRequest#tree}) with the local draft. */
  private GenerationResult generateTree(GenerationRequest req, int[] prompt, TokenSink sink,
      SpeculativeLoop.RoundListener rounds, RuleChoice rules, long t0) {
    ModelConfig c = checkpoint.config();
    boolean auto = req.tree() == GenerationRequest.AUTO;
    int maxNodes = auto ? dev.dsd.verification.tree.AutoTreeBudget.MAX_NODES : req.tree();
    int usable = Math.min(c.vocabSize(), checkpoint.tokenizer().vocabSize());
    // a round feeds the accepted path again under the tree: room for both
    int capacity = Math.min(c.maxPositionEmbeddings(), prompt.length + req.maxTokens() + maxNodes
        + dev.dsd.node.generate.tree.TreeLoop.MAX_TREE_DEPTH);
    String key = "tree|t=" + req.temperature();
    dev.dsd.verification.tree.AutoTreeBudget kept = auto ? treeBudgets.remove(key) : null;
    dev.dsd.verification.tree.AutoTreeBudget adaptive = auto
        ? (kept != null ? kept : new dev.dsd.verification.tree.AutoTreeBudget()) : null;
    try (TargetPass target = new LocalTargetPass(runner, runner.openSession(UUID.randomUUID().toString(), "local",
            capacity), rules.rule(req), usable);
        dev.dsd.node.generate.tree.TreeDrafter drafter = draft.newTreeDrafter(req, capacity, usable)) {
      GenerationResult r = new dev.dsd.node.generate.tree.TreeLoop(checkpoint.tokenizer(), new HashSet<>(c.eosTokenIds()))
          .run(req, prompt, target, drafter, rules.treeRule(req),
              auto ? adaptive : dev.dsd.verification.tree.TreeBudget.fixed(maxNodes), maxNodes, capacity, sink, rounds,
              t0);
      if (adaptive != null) {
        treeBudgets.put(key, adaptive);
      }
      return r;
    }
  }

  @Override
  public void close() {
    runner.close();
    checkpoint.close();
    if (draft != null) {
      draft.close();
    }
  }
}
