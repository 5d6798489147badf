package dev.dsd.node.entry;

import dev.dsd.node.generate.tree.TreeDrafter;
import dev.dsd.node.generate.tree.TreeLoop;
import dev.dsd.verification.tree.AutoTreeBudget;
import dev.dsd.verification.tree.TreeBudget;
import dev.dsd.node.pipeline.PipelineService;

import dev.dsd.node.generate.Drafter;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.PromptCheck;
import dev.dsd.node.generate.RuleChoice;
import dev.dsd.node.generate.SpeculativeLoop;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.routing.Route;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.node.generate.PipelinedLoop;
import dev.dsd.verification.window.AdaptiveWindow;
import dev.dsd.verification.window.PipelineController;
import dev.dsd.verification.window.WindowMemory;
import dev.dsd.verification.window.WindowPolicy;
import java.util.HashSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Generation as the entry of a pipeline: the target's layers run on the peers of a route, drafting
 * runs here (or on a draft node), and the speculative loop is the same as for local generation.
 */
public final class PipelineGenerator implements Generator {
  private static final Logger log = LoggerFactory.getLogger(PipelineGenerator.class);
  public static final int MAX_AUTO_WINDOW = 16;
  /**
   * Rounds in flight the controller may choose. Measured on the 4-stage 20 ms bench (2 cores shared
   * with other work, 10 prompts x 64 tokens, greedy, one run): k = 16 with 2 in flight was 1.10x
   * {@code auto}, k = 8 with 2 1.03x and with 4 0.84x (the cancelled rounds' protocol work and
   * compute, which the controller's model underrates when other processes load the cores, and a
   * later first token); a controller free to go to 8 chose 8 and lost to {@code auto}. See README,
   * "Pipelined rounds: what kept them serial".
   */
  public static final int MAX_PIPELINE_DEPTH = 2;

  /** Makes the drafter of one generation; returns null to generate without speculation. */
  @FunctionalInterface
  public interface DrafterFactory {
    Drafter create(GenerationRequest req, int capacity, int usableVocab);

    DrafterFactory NONE = (req, capacity, usable) -> null;
  }

  private final PipelineService service;
  private final Tokenizer tokenizer;
  private final ModelConfig config;
  private final RouteSource router;
  private final DrafterFactory drafters;
  private final PipelineTargetPass.Options options;
  private RuleChoice rules;
  private final int usable;
  private final WindowMemory windows = new WindowMemory(0, MAX_AUTO_WINDOW);
  private final WindowMemory learnedWindows = WindowMemory.learned(0, MAX_AUTO_WINDOW);
  /** Auto tree budgets by route and sampling, handed to one generation at a time. */
  private final java.util.concurrent.ConcurrentHashMap<String, AutoTreeBudget> budgets =
      new java.util.concurrent.ConcurrentHashMap<>();
  private volatile TreeDrafterFactory treeDrafters;

  /** Makes the tree drafter of one generation. */
  @FunctionalInterface
  public interface TreeDrafterFactory {
    TreeDrafter create(GenerationRequest req, int capacity, int usableVocab);

    /** Whether this factory drafts the request's trees; if not, a tree request runs chains. */
    default boolean serves(GenerationRequest req) {
      return true;
    }
  }
  private volatile double spotCheckProbability;
  private volatile java.util.function.BiConsumer<String, Double> stageTimes = (stage, seconds) -> { };
  private volatile SpeculativeLoop.RoundListener roundListener = SpeculativeLoop.RoundListener.NONE;
  private volatile Resilience resilience = (failovers, stallNanos, spotChecks) -> { };
  private volatile boolean pipelinedByDefault = GenerationRequest.PIPELINED_DEFAULT;
  /** Pipelined rounds of a fixed window: rounds in flight, or 0 to let the controller choose. */
  private volatile int fixedDepth;
  /** Pipelined rounds' estimates (acceptance, round trip, compute) per route and drafter, across requests. */
  private final java.util.Map<String, PipelineController> controllers = new java.util.concurrent.ConcurrentHashMap<>();

  /** What one generation's pipeline survived, told when it ends (also when it ends in an error). */
  public interface Resilience {
    void record(int failovers, long longestStallNanos, int spotChecks);
  }

  /** Where routes come from, and where failed peers are reported (for a back-off). */
  public interface RouteSource {
    /** The best route of any one weights format avoiding {@code avoid}. */
    Route route(java.util.Set<dev.dsd.p2p.core.PeerId> avoid);

    /**
     * The best route all of whose stages keep their weights in {@code weights} (null: any one
     * format). By default the one-argument route, refused when it is of another format.
     */
    default Route route(java.util.Set<dev.dsd.p2p.core.PeerId> avoid, WeightFormat weights) {
      Route r = route(avoid);
      if (weights != null && r.weights() != weights) {
        throw new dev.dsd.node.routing.NoRouteException("no route in " + weights.id() + " weights: the route runs "
            + r.weights().id());
      }
      return r;
    }

    default void failed(dev.dsd.p2p.core.PeerId peer) { }

    /** A peer was caught returning wrong activations: never route through it again. */
    default void banned(dev.dsd.p2p.core.PeerId peer) {
      failed(peer);
    }

    /**
     * Another peer serving exactly the layers of {@code route}'s stage {@code index}, none of
     * {@code exclude}; null when there is none. Spot checks compare a stage with such replicas.
     */
    default Route.Stage replica(Route route, int index, java.util.Set<dev.dsd.p2p.core.PeerId> exclude) {
      return null;
    }

    /** A fixed route, with nothing to fail over to. */
    static RouteSource of(Route r) {
      return avoid -> {
        if (r.stages().stream().anyMatch(s -> avoid.contains(s.peer()))) {
          throw new dev.dsd.node.routing.NoRouteException("no other route: the fixed route's peer failed");
        }
        return r;
      };
    }
  }

  public PipelineGenerator(PipelineService service, Tokenizer tokenizer, ModelConfig config, RouteSource router,
      DrafterFactory drafters, PipelineTargetPass.Options options) {
    this.service = service;
    this.tokenizer = tokenizer;
    this.config = config;
    this.router = router;
    this.drafters = drafters;
    this.options = options;
    this.usable = Math.min(config.vocabSize(), tokenizer.vocabSize());
    this.rules = new RuleChoice(tokenizer, usable);
  }

  @Override
  public GenerationResult generate(GenerationRequest req, TokenSink sink) {
    long t0 = System.nanoTime(); // times include finding the route and opening the session on every stage
    int[] prompt = PromptCheck.encode(tokenizer, req, config);
    boolean auto = req.speculation() == GenerationRequest.AUTO || req.speculation() == GenerationRequest.LEARNED;
    WindowMemory windows = req.speculation() == GenerationRequest.LEARNED ? learnedWindows : this.windows;
    int kMax = req.speculation() == 0 ? 0 : auto ? MAX_AUTO_WINDOW : req.speculation();
    if (kMax != 0 && req.tree() != 0 && treeDrafters != null && treeDrafters.serves(req) && !req.penalties().active()
        && req.logprobs() == GenerationRequest.NO_LOGPROBS) {
      return generateTree(req, prompt, sink, t0);
    }
    int capacity = Math.min(config.maxPositionEmbeddings(), prompt.length + req.maxTokens() + kMax);
    AcceptanceRule rule = rules.rule(req);
    PipelineTargetPass.Options sampled = req.temperature() > 0 || req.adaptiveVerification()
        ? options.withSampling(req.temperature(), req.topP()) : options;
    // logprobs of any token the rules may pick need the whole (processed) rows; a summary has only
    // the tokens acceptance reads
    PipelineTargetPass.Options opts = req.logprobs() != GenerationRequest.NO_LOGPROBS
        ? sampled.withFullLogits(true) : sampled;
    SpeculativeLoop loop = new SpeculativeLoop(tokenizer, new HashSet<>(config.eosTokenIds()));
    try (ResilientTargetPass target = new ResilientTargetPass(router, req.weights(),
            route -> PipelineTargetPass.open(service, route, capacity, opts, req.penalties(), prompt.length),
            spotCheckProbability, req.seed());
        Drafter drafter = kMax == 0 ? null : drafters.create(req, capacity, usable)) {
      // auto continues from what earlier requests on these stages with this kind of drafter learned
      String routeKey = String.join(",", target.route()) + "|" + (drafter == null ? "none" : drafter.getClass().getName())
          + "|t=" + req.temperature();
      AdaptiveWindow adaptive = auto ? windows.start(routeKey) : null;
      WindowPolicy window = auto ? adaptive : WindowPolicy.fixed(Math.max(kMax, 0));
      boolean pipelined = drafter != null && drafter.pipelines() && req.pipelinedOr(pipelinedByDefault);
      // the controller picks the depth (and with auto, k); its estimates outlive the request
      PipelineController pc = !pipelined ? null : controllers.computeIfAbsent(routeKey + "|k=" + kMax + "|" + auto,
          key -> auto ? new PipelineController(1, MAX_AUTO_WINDOW, MAX_PIPELINE_DEPTH)
              : new PipelineController(kMax, kMax, MAX_PIPELINE_DEPTH));
      PipelineController.Choice fixed = auto || fixedDepth == 0 ? null : new PipelineController.Choice(kMax, fixedDepth);
      // where the controller expects nothing from rounds in flight the generation runs synchronously,
      // exactly as without --pipelined, and its rounds teach the controller for the next requests
      boolean inFlight = pipelined && (fixed != null || pc.next().depth() > 1);
      SpeculativeLoop.RoundListener rounds = (k, accepted, draftNanos, verifyNanos) -> {
        roundListener.round(k, accepted, draftNanos, verifyNanos);
        int shared = 1;
        long compute = 0;
        long slowest = 0;
        long queue = 0;
        for (var t : target.lastTimings()) {
          shared = Math.max(shared, t.getBatchRows());
          compute += t.getComputeMicros() * 1000L;
          slowest = Math.max(slowest, t.getComputeMicros() * 1000L);
          queue += t.getQueueMicros() * 1000L;
          stageTimes.accept(dev.dsd.p2p.core.PeerId.fromBytes(t.getPeerId().toByteArray()).toBase58(),
              t.getComputeMicros() / 1e6);
        }
        stageTimes.accept("round", verifyNanos / 1e9);
        if (adaptive != null) { // under load, k is chosen for the swarm's throughput
          adaptive.sharing(shared);
        }
        if (pc != null && !inFlight && k > 0) { // the pipelined loop tells the controller itself
          pc.observe(k, accepted, accepted < k, draftNanos, compute > 0 ? compute : -1, slowest > 0 ? slowest : -1,
              compute > 0 ? Math.max(0, verifyNanos - compute - queue) : -1, shared);
        }
      };
      GenerationResult r;
      try {
        if (inFlight) {
          r = new PipelinedLoop(tokenizer, new HashSet<>(config.eosTokenIds())).run(req, prompt, target, drafter, rule,
              pc, fixed, capacity, sink, rounds, t0);
        } else {
          r = loop.run(req, prompt, target, drafter, rule, window, capacity, sink, rounds, t0);
        }
      } finally {
        resilience.record(target.failovers(), target.longestStallNanos(), target.spotChecks());
      }
      if (adaptive != null) {
        windows.finish(routeKey, adaptive);
      }
      if (pipelined && !inFlight) {
        log.info("pipelined generation ran synchronously: the controller expects no gain from rounds in flight "
            + "controller={}", pc);
      }
      log.info("generation done pipelined={} route={} tokens={} rounds={} acceptance={} tokPerS={} bytes={} failovers={} stallMs={} spotChecks={}",
          inFlight, r.route(), r.tokenIds().length, r.rounds(), String.format("%.3f", r.acceptanceRate()),
          String.format("%.1f", r.tokensPerSecond()), r.bytesSent(), target.failovers(),
          target.longestStallNanos() / 1_000_000, target.spotChecks());
      return r;
    }
  }

  /** Token-tree speculation ({@link GenerationRequest#tree}): the same session, trees instead of chains. */
  private GenerationResult generateTree(GenerationRequest req, int[] prompt, TokenSink sink, long t0) {
    boolean auto = req.tree() == GenerationRequest.AUTO;
    int maxNodes = auto ? AutoTreeBudget.MAX_NODES : req.tree();
    int capacity = Math.min(config.maxPositionEmbeddings(), prompt.length + req.maxTokens() + maxNodes);
    PipelineTargetPass.Options opts = (req.temperature() > 0 ? options.withSampling(req.temperature(), req.topP())
        : options).withChildScores(req.adaptiveVerification());
    try (ResilientTargetPass target = new ResilientTargetPass(router, req.weights(),
            route -> PipelineTargetPass.open(service, route, capacity, opts, req.penalties(), prompt.length),
            spotCheckProbability, req.seed());
        TreeDrafter drafter = treeDrafters.create(req, capacity, usable)) {
      String key = String.join(",", target.route()) + "|tree|t=" + req.temperature();
      AutoTreeBudget kept = auto ? budgets.remove(key) : null; // one generation at a time learns on it
      AutoTreeBudget adaptive = auto ? (kept != null ? kept : new AutoTreeBudget()) : null;
      TreeBudget budget = auto ? adaptive : TreeBudget.fixed(maxNodes);
      SpeculativeLoop.RoundListener rounds = (k, accepted, draftNanos, verifyNanos) -> {
        roundListener.round(k, accepted, draftNanos, verifyNanos);
        for (var t : target.lastTimings()) {
          stageTimes.accept(dev.dsd.p2p.core.PeerId.fromBytes(t.getPeerId().toByteArray()).toBase58(),
              t.getComputeMicros() / 1e6);
        }
        stageTimes.accept("round", verifyNanos / 1e9);
      };
      GenerationResult r;
      try {
        r = new TreeLoop(tokenizer, new HashSet<>(config.eosTokenIds())).run(req, prompt, target, drafter,
            rules.treeRule(req), budget, maxNodes, capacity, sink, rounds, t0);
      } finally {
        resilience.record(target.failovers(), target.longestStallNanos(), target.spotChecks());
      }
      if (adaptive != null) {
        budgets.put(key, adaptive);
      }
      log.info("generation done route={} tree={} tokens={} rounds={} tokensPerRound={} tokPerS={} bytes={} failovers={}",
          r.route(), auto ? "auto" : maxNodes, r.tokenIds().length, r.rounds(),
          String.format("%.2f", r.tokenIds().length / (double) Math.max(1, r.rounds())),
          String.format("%.1f", r.tokensPerSecond()), r.bytesSent(), target.failovers());
      return r;
    }
  }

  /** Enables token-tree speculation with drafters from {@code factory} (null: chains only). */
  public PipelineGenerator withTreeDrafters(TreeDrafterFactory factory) {
    this.treeDrafters = factory;
    return this;
  }

  /**
   * Probability that a round is re-run with one stage swapped for a replica and the answers
   * compared (0 disables; each check replays the session's tokens on the replica).
   */
  /** Adaptive verification's max gap: the model's calibrated one ({@link dev.dsd.node.generate.AdaptiveCalibration}). */
  public PipelineGenerator withAdaptiveMaxGap(double maxGap) {
    this.rules = rules.withAdaptiveMaxGap(maxGap);
    return this;
  }

  public PipelineGenerator withSpotChecks(double probability) {
    if (!(probability >= 0 && probability <= 1)) {
      throw new IllegalArgumentException("spot-check probability must be in [0, 1], got " + probability);
    }
    this.spotCheckProbability = probability;
    return this;
  }

  /** Whether requests that do not say go pipelined (several rounds in flight). */
  public PipelineGenerator withPipelinedDefault(boolean pipelined) {
    this.pipelinedByDefault = pipelined;
    return this;
  }

  /**
   * Pipelined generations with a fixed window keep {@code depth} rounds in flight instead of the
   * depth the controller picks (0: the controller's again); what a benchmark compares the
   * machinery with, apart from the controller's choices. Windows chosen automatically ignore it.
   */
  public PipelineGenerator withFixedDepth(int depth) {
    if (depth < 0 || depth > PipelineController.MAX_DEPTH) {
      throw new IllegalArgumentException("depth must be 0.." + PipelineController.MAX_DEPTH + ", got " + depth);
    }
    this.fixedDepth = depth;
    return this;
  }

  /** Receives each round's per-stage compute seconds (by peer id) and the whole round's ("round"). */
  public PipelineGenerator withStageTimes(java.util.function.BiConsumer<String, Double> sink) {
    this.stageTimes = sink;
    return this;
  }

  /** Receives every round's window, acceptance and times (benchmarks read acceptance per round). */
  public PipelineGenerator withRoundListener(SpeculativeLoop.RoundListener listener) {
    this.roundListener = listener;
    return this;
  }

  public PipelineGenerator withResilience(Resilience sink) {
    this.resilience = sink;
    return this;
  }

  public Tokenizer tokenizer() {
    return tokenizer;
  }

  public ModelConfig config() {
    return config;
  }

  @Override
  public void close() {
    // the service, tokenizer and drafters belong to the node that made this generator
  }
}
