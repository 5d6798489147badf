package dev.dsd.node.generate;

import dev.dsd.pipeline.tokenizer.StreamingDecoder;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import dev.dsd.verification.acceptance.TargetScores;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The client's side of a generation: each accepted token in order is checked for EOS, decoded to
 * text, matched against the stop strings, given its logprobs and streamed to the sink, until the
 * output ends (EOS, stop string, max tokens, or a sink that cancels).
 */
public final class TokenOutput {
  private final Tokenizer tokenizer;
  private final Set<Integer> eos;

  public TokenOutput(Tokenizer tokenizer, Set<Integer> eos) {
    this.tokenizer = tokenizer;
    this.eos = Set.copyOf(eos);
  }

  public Run start(GenerationRequest req, TokenSink sink, long t0) {
    return new Run(req, sink, t0);
  }

  /** One generation's output so far. */
  public final class Run {
    private final TokenSink sink;
    private final long t0;
    private final StreamingDecoder text = tokenizer.streamingDecoder();
    private final StopMatcher stop;
    private final int[] out;
    private final boolean wantLogprobs;
    private final List<TokenChoice> logprobs = new ArrayList<>();
    private int logprobsSent;
    private int n;
    private long firstToken;
    private String finish = "length";
    private boolean done;

    private Run(GenerationRequest req, TokenSink sink, long t0) {
      this.sink = sink;
      this.t0 = t0;
      this.stop = new StopMatcher(req.stop());
      this.out = new int[req.maxTokens()];
      this.wantLogprobs = req.logprobs() != GenerationRequest.NO_LOGPROBS;
    }

    public boolean done() {
      return done;
    }

    /** Tokens output so far. */
    public int count() {
      return n;
    }

    /** The next accepted token, chosen from row {@code row} of {@code scores}; false once the output has ended. */
    public boolean emit(int tok, TargetScores scores, int row, GenerationRequest req) {
      if (done) {
        return false;
      }
      if (eos.contains(tok)) {
        return end("stop");
      }
      out[n++] = tok;
      if (firstToken == 0) {
        firstToken = System.nanoTime();
      }
      if (wantLogprobs) {
        logprobs.add(TokenChoice.of(scores.logprob(row, tok, req.logprobs()), tokenizer));
      }
      String piece = stop.feed(text.push(tok));
      if (!piece.isEmpty()) {
        List<TokenChoice> fresh = List.copyOf(logprobs.subList(logprobsSent, logprobs.size()));
        logprobsSent = logprobs.size();
        if (!sink.accept(piece, new int[] {tok}, fresh)) {
          return end("cancelled");
        }
      }
      if (stop.stopped()) {
        return end("stop");
      }
      if (n == out.length) {
        return end("length");
      }
      return true;
    }

    private boolean end(String why) {
      finish = why;
      done = true;
      return false;
    }

    public GenerationResult finish(int[] prompt, long rounds, long drafted, long accepted, TargetPass target) {
      if (!stop.stopped()) {
        String rest = stop.feed(text.flush()) + stop.finish();
        if (!rest.isEmpty()) {
          sink.accept(rest, new int[0], List.copyOf(logprobs.subList(logprobsSent, logprobs.size())));
        }
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      return new GenerationResult(stop.text(), Arrays.copyOf(out, n), prompt.length, finish, seconds, (int) rounds,
          drafted, accepted, new ArrayList<>(target.route()), target.bytesSent(), logprobs,
          firstToken == 0 ? 0 : (firstToken - t0) / 1e9);
    }
  }
}
