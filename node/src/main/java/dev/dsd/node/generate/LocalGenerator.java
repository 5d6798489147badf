package dev.dsd.node.generate;

import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.pipeline.tokenizer.StreamingDecoder;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.sampling.Sampler;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/** Generation in this process on the whole model (one shard {@code [0, L)}), token by token. */
public final class LocalGenerator implements Generator {
  private final Checkpoint checkpoint;
  private final ShardRunner runner;

  public LocalGenerator(Path modelDir, int threads) {
    this.checkpoint = Checkpoint.open(modelDir);
    try {
      ModelConfig c = checkpoint.config();
      this.runner = new ShardRunner(c, checkpoint.weights(), 0, c.numLayers(), RunnerOptions.defaults().withThreads(threads));
    } catch (RuntimeException e) {
      checkpoint.close();
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
    Tokenizer tok = checkpoint.tokenizer();
    int[] prompt = PromptCheck.encode(tok, req, checkpoint.config());
    int vocab = checkpoint.config().vocabSize();
    Set<Integer> eos = new HashSet<>(checkpoint.config().eosTokenIds());
    Sampler sampler = Sampler.create(req.temperature(), req.topP(), req.seed());
    StreamingDecoder text = tok.streamingDecoder();
    StopMatcher stop = new StopMatcher(req.stop());
    int[] out = new int[req.maxTokens()];
    int n = 0;
    String finish = "length";
    try (ShardSession s = runner.openSession(UUID.randomUUID().toString(), "local", prompt.length + req.maxTokens())) {
      float[] logits = runner.forwardTokens(s, prompt);
      int row = (prompt.length - 1) * vocab;
      while (n < req.maxTokens()) {
        int next = sampler.sample(logits, row, vocab);
        if (eos.contains(next)) {
          finish = "stop";
          break;
        }
        out[n++] = next;
        String piece = stop.feed(text.push(next));
        if (!piece.isEmpty() && !sink.accept(piece, new int[] {next})) {
          finish = "cancelled";
          break;
        }
        if (stop.stopped()) {
          finish = "stop";
          break;
        }
        if (n == req.maxTokens()) {
          break;
        }
        logits = runner.forwardTokens(s, new int[] {next});
        row = 0;
      }
    }
    if (!stop.stopped()) {
      String rest = stop.feed(text.flush()) + stop.finish();
      if (!rest.isEmpty()) {
        sink.accept(rest, new int[0]);
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    int[] ids = Arrays.copyOf(out, n);
    return new GenerationResult(stop.text(), ids, prompt.length, finish, seconds, n, 0, 0, List.of("local"), 0);
  }

  @Override
  public void close() {
    runner.close();
    checkpoint.close();
  }
}
