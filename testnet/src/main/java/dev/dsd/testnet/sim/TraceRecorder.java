package dev.dsd.testnet.sim;

import dev.dsd.node.generate.Drafter;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.PromptCheck;
import dev.dsd.node.generate.PromptLookupDrafter;
import dev.dsd.node.generate.TokenSink;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Records an {@link AcceptanceTrace} by running the real target and drafter in this process,
 * through the same {@code LocalGenerator}, speculative loop and drafters a node uses.
 */
public final class TraceRecorder {
  /** Largest window a greedy trace records matches for (as far as {@code --spec auto} looks). */
  public static final int MAX_WINDOW = 16;
  /** Fixed windows a sampled trace runs the real loop with. */
  public static final int[] SAMPLED_WINDOWS = {1, 2, 4, 8};
  /** Prompts separated by a line holding only this. */
  public static final String SEPARATOR = "---";
  /** Bytes a prompts file may hold. */
  public static final long MAX_PROMPTS_FILE_BYTES = 16L << 20;

  private TraceRecorder() { }

  /**
   * Prints the first N prompts of a {@code ---}-separated file, one per line, base64-encoded, so the
   * testnet scripts hand the testnet exactly the strings the simulator's trace used.
   * {@code TraceRecorder FILE N}
   */
  public static void main(String[] args) throws IOException {
    if (args.length != 2) {
      System.err.println("usage: TraceRecorder PROMPTS_FILE N");
      System.exit(2);
    }
    List<String> all = readPrompts(Path.of(args[0]));
    for (String p : all.subList(0, Math.min(Integer.parseInt(args[1]), all.size()))) {
      System.out.println(java.util.Base64.getEncoder().encodeToString(p.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }
  }

  /** Prompts of a file where lines holding only {@code ---} separate them; blank prompts are dropped. */
  public static List<String> readPrompts(Path file) throws IOException {
    if (Files.size(file) > MAX_PROMPTS_FILE_BYTES) {
      throw new IllegalArgumentException(file + " is " + Files.size(file) + " bytes, limit " + MAX_PROMPTS_FILE_BYTES);
    }
    List<String> out = new ArrayList<>();
    StringBuilder cur = new StringBuilder();
    for (String line : Files.readAllLines(file)) {
      if (line.strip().equals(SEPARATOR)) {
        add(out, cur);
        cur.setLength(0);
      } else {
        cur.append(cur.length() == 0 ? "" : "\n").append(line);
      }
    }
    add(out, cur);
    if (out.isEmpty()) {
      throw new IllegalArgumentException(file + " holds no prompt");
    }
    return out;
  }

  private static void add(List<String> out, StringBuilder cur) {
    if (!cur.toString().isBlank()) {
      out.add(cur.toString());
    }
  }

  /**
   * @param drafter "model" (the draft model) or "lookup" (prompt lookup)
   * @param progress told one line per prompt
   */
  public static AcceptanceTrace record(Path target, Path draft, String drafter, List<String> prompts, int maxTokens,
      double temperature, long seed, java.util.function.Consumer<String> progress) {
    if (!drafter.equals("model") && !drafter.equals("lookup")) {
      throw new IllegalArgumentException("drafter must be model or lookup, got " + drafter);
    }
    List<AcceptanceTrace.Prompt> out = new ArrayList<>();
    try (LocalGenerator gen = new LocalGenerator(target, drafter.equals("model") ? draft : null, 1)) {
      for (int i = 0; i < prompts.size(); i++) {
        String text = prompts.get(i);
        AcceptanceTrace.Prompt p = temperature == 0 ? greedy(gen, drafter, text, maxTokens)
            : sampled(gen, drafter, text, maxTokens, temperature, seed + i);
        out.add(p);
        progress.accept("trace prompt " + (i + 1) + "/" + prompts.size() + " prompt_tokens=" + p.promptTokens()
            + " tokens=" + p.tokens());
      }
    }
    return new AcceptanceTrace(target.getFileName().toString(), drafter.equals("model") ? draft.getFileName().toString()
        : "prompt-lookup", drafter, temperature, maxTokens, MAX_WINDOW, out);
  }

  /** The target's greedy output, then from every position what the drafter proposes and how much of it matches. */
  private static AcceptanceTrace.Prompt greedy(LocalGenerator gen, String drafter, String text, int maxTokens) {
    GenerationRequest req = GenerationRequest.greedy(text, maxTokens);
    int[] prompt = PromptCheck.encode(gen.tokenizer(), req, gen.config());
    int[] out = gen.generate(req, TokenSink.NONE).tokenIds();
    int usable = Math.min(gen.config().vocabSize(), gen.tokenizer().vocabSize());
    int capacity = Math.min(gen.config().maxPositionEmbeddings(), prompt.length + maxTokens + MAX_WINDOW + 1);
    int[] match = new int[out.length];
    try (Drafter d = drafter.equals("lookup") ? new PromptLookupDrafter() : gen.draft().newDrafter(req, capacity, usable)) {
      d.start(prompt);
      for (int pos = 0; pos < out.length; pos++) {
        int context = prompt.length + pos;
        int k = Math.min(MAX_WINDOW, capacity - context - 1);
        int[] drafts = k <= 0 ? new int[0] : d.propose(k);
        int m = 0;
        while (m < drafts.length && pos + m < out.length && drafts[m] == out[pos + m]) {
          m++;
        }
        match[pos] = m;
        // the round "keeps none and the target says out[pos]": the drafter moves on one position
        d.accepted(context, drafts, 0, out[pos]);
      }
    }
    return new AcceptanceTrace.Prompt(prompt.length, out.length, match, 0, Map.of());
  }

  private static AcceptanceTrace.Prompt sampled(LocalGenerator gen, String drafter, String text, int maxTokens,
      double temperature, long seed) {
    Map<Integer, int[]> rounds = new LinkedHashMap<>();
    long acc = 0;
    long rejected = 0;
    int promptTokens = 0;
    int tokens = maxTokens;
    for (int k : SAMPLED_WINDOWS) {
      GenerationRequest req = new GenerationRequest(text, maxTokens, temperature, 1, seed, k, false, List.of());
      promptTokens = PromptCheck.encode(gen.tokenizer(), req, gen.config()).length;
      int[] got = new int[maxTokens + 1];
      int[] n = {0};
      GenerationResult r = gen.generate(req, TokenSink.NONE, (kk, accepted, dn, vn) -> {
        if (kk > 0 && n[0] < got.length) {
          got[n[0]++] = accepted;
        }
      });
      tokens = Math.min(tokens, r.tokenIds().length);
      int[] rs = Arrays.copyOf(got, n[0]);
      rounds.put(k, rs);
      for (int a : rs) {
        acc += a;
        rejected += a < k ? 1 : 0;
      }
    }
    double rate = acc + rejected == 0 ? 0 : (double) acc / (acc + rejected);
    return new AcceptanceTrace.Prompt(promptTokens, tokens, null, rate, rounds);
  }
}
