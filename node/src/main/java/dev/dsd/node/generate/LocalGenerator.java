package dev.dsd.node.generate;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.ModelFormatException;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.tokenizer.StreamingDecoder;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.AcceptanceRule;
import dev.dsd.verification.acceptance.AdaptiveAcceptance;
import dev.dsd.verification.importance.TokenImportance;
import dev.dsd.verification.acceptance.GreedyAcceptance;
import dev.dsd.verification.acceptance.SpeculativeSampling;
import dev.dsd.verification.window.AdaptiveWindow;
import dev.dsd.verification.window.WindowPolicy;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
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
    long t0 = System.nanoTime();
    ModelConfig c = checkpoint.config();
    int[] prompt = PromptCheck.encode(checkpoint.tokenizer(), req, c);
    boolean auto = req.speculation() == GenerationRequest.AUTO;
    int k = draftRunner == null ? 0 : auto ? MAX_AUTO_WINDOW : req.speculation();
    WindowPolicy window = auto ? new AdaptiveWindow(1, MAX_AUTO_WINDOW) : WindowPolicy.fixed(k);
    int vocab = c.vocabSize();
    int usable = Math.min(vocab, checkpoint.tokenizer().vocabSize());
    Set<Integer> eos = new HashSet<>(c.eosTokenIds());
    AcceptanceRule rule = req.adaptiveVerification()
        ? new AdaptiveAcceptance(importance(usable), ADAPTIVE_MIN_PROBABILITY, req.temperature(), req.topP(), req.seed())
        : req.temperature() == 0 ? new GreedyAcceptance()
        : new SpeculativeSampling(req.temperature(), req.topP(), req.seed());
    StreamingDecoder text = checkpoint.tokenizer().streamingDecoder();
    StopMatcher stop = new StopMatcher(req.stop());
    int[] out = new int[req.maxTokens()];
    int n = 0;
    int rounds = 0;
    long drafted = 0;
    long acceptedTotal = 0;
    String finish = "length";
    // Verification writes k positions beyond what is kept, so the caches need room for them too.
    int capacity = Math.min(c.maxPositionEmbeddings(), prompt.length + req.maxTokens() + k);
    String id = UUID.randomUUID().toString();
    try (ShardSession target = runner.openSession(id, "local", capacity);
        ModelDrafter drafter = draftRunner == null ? null : new ModelDrafter(draftRunner,
            draftRunner.openSession(id, "local", Math.min(capacity, draftRunner.config().maxPositionEmbeddings())),
            req.temperature(), req.topP(), req.seed(), usable)) {
      if (prompt.length > 1) {
        runner.forwardTokens(target, Arrays.copyOf(prompt, prompt.length - 1));
      }
      if (drafter != null) {
        drafter.start(prompt);
      }
      int last = prompt[prompt.length - 1];
      int context = prompt.length;
      generation:
      while (n < req.maxTokens()) {
        int kk = k == 0 ? 0 : Math.max(0, Math.min(window.next(), Math.min(req.maxTokens() - n - 1, capacity - context)));
        long t1 = System.nanoTime();
        int[] drafts = kk == 0 ? new int[0] : drafter.propose(kk);
        long t2 = System.nanoTime();
        int[] input = new int[kk + 1];
        input[0] = last;
        System.arraycopy(drafts, 0, input, 1, kk);
        float[] logits = runner.forwardTokens(target, input);
        VocabMask.apply(logits, vocab, usable);
        AcceptanceRule.Verdict v = rule.decide(drafts, kk == 0 ? null : drafter.lastDistributions(), logits, vocab);
        window.observe(kk, v.accepted(), t2 - t1, System.nanoTime() - t2, 0);
        rounds++;
        drafted += kk;
        acceptedTotal += v.accepted();
        target.truncate(context + v.accepted());
        if (drafter != null) {
          drafter.accepted(context, drafts, v.accepted(), v.next());
        }
        int[] produced = Arrays.copyOf(drafts, v.accepted() + 1);
        produced[v.accepted()] = v.next();
        for (int tok : produced) {
          if (eos.contains(tok)) {
            finish = "stop";
            break generation;
          }
          out[n++] = tok;
          String piece = stop.feed(text.push(tok));
          if (!piece.isEmpty() && !sink.accept(piece, new int[] {tok})) {
            finish = "cancelled";
            break generation;
          }
          if (stop.stopped()) {
            finish = "stop";
            break generation;
          }
          if (n == req.maxTokens()) {
            break generation;
          }
        }
        context += v.accepted() + 1;
        last = v.next();
      }
    }
    if (!stop.stopped()) {
      String rest = stop.feed(text.flush()) + stop.finish();
      if (!rest.isEmpty()) {
        sink.accept(rest, new int[0]);
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    List<String> route = draftRunner == null ? List.of("local") : List.of("local", "local-draft");
    return new GenerationResult(stop.text(), Arrays.copyOf(out, n), prompt.length, finish, seconds, rounds, drafted,
        acceptedTotal, route, 0);
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
