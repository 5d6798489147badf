package dev.dsd.testnet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.RuleChoice;
import dev.dsd.node.generate.SpeculativeLoop;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.pipeline.runtime.RunnerOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

/**
 * Adaptive verification judged by its text, next to its speed: the pair generates in this process
 * (whole target, local draft, fixed window k) for each prompt, losslessly and with adaptive
 * verification at each max gap, greedy and sampled. Per (sampling, gap) it reports tok/s,
 * acceptance, tokens per round, and against the lossless output of the same prompt and seed: the
 * first differing token (median) and the token edit distance (mean); distinct 3- and 4-grams; the
 * share of prompts whose next line the output reproduces exactly ({@link #nextLineMatches}) and how
 * close it comes ({@link #nextLineSimilarity}).
 *
 * <p>Runs are interleaved: for each prompt every (sampling, gap) pair runs once, in an order shuffled
 * by the seed, after one unmeasured warm-up generation, so load on a shared machine hits all modes
 * alike. Sampled runs of one prompt share their seed across modes; the adaptive rule consumes random
 * numbers as the lossless one does, so a sampled divergence is caused by a relaxed acceptance.
 */
public final class QualityBench {
  private QualityBench() {}

  /** A prompt ending just before a line break and the file's next line ({@code tools/train/quality_prompts.py}). */
  public record Prompt(String source, String prompt, String reference) {}

  /**
   * @param gaps adaptive max gaps to run; 0 (lossless) is always run as the baseline
   * @param temperatures 0 for greedy, e.g. 0.8 for sampled
   */
  public record Config(Path target, Path draft, List<Prompt> prompts, int maxTokens, int k, int threads,
      List<Double> gaps, List<Double> temperatures, double topP, long seed) {}

  /** One (sampling, gap) over all prompts. Divergence and edit distance are NaN for the lossless rows. */
  public record Row(String sampling, String mode, double maxGap, int prompts, int tokens, double seconds,
      double tokensPerSecond, double acceptance, double tokensPerRound, double nextLineExact,
      double nextLineSimilarity, double distinct3,
      double distinct4, double medianFirstDivergence, double meanEditDistance) {}

  /** The {@code set} ("calibration" or "heldout") of a prompts file. */
  public static List<Prompt> read(Path file, String set) throws IOException {
    JsonNode arr = new ObjectMapper().readTree(file.toFile()).get(set);
    if (arr == null || !arr.isArray() || arr.isEmpty()) {
      throw new IOException(file + " has no prompt set '" + set + "'");
    }
    List<Prompt> out = new ArrayList<>();
    for (JsonNode n : arr) {
      if (!n.hasNonNull("prompt") || !n.hasNonNull("reference")) {
        throw new IOException(file + ": every prompt needs 'prompt' and 'reference', got " + n);
      }
      out.add(new Prompt(n.path("source").asText(""), n.get("prompt").asText(), n.get("reference").asText()));
    }
    return out;
  }

  /**
   * Whether {@code output} (the text after a prompt that stops just before a line break) first ends
   * the prompt's line and then writes exactly {@code reference}, trailing whitespace aside, as a
   * whole line (followed by a line break or the end of the output).
   */
  public static boolean nextLineMatches(String output, String reference) {
    if (!output.startsWith("\n")) {
      return false;
    }
    int end = output.indexOf('\n', 1);
    String line = end < 0 ? output.substring(1) : output.substring(1, end);
    return line.stripTrailing().equals(reference.stripTrailing());
  }

  /**
   * How close the output's next line comes to {@code reference}: 1 - (character edit distance / the
   * longer length), trailing whitespace aside; 0 where the output does not first end the prompt's
   * line (as for {@link #nextLineMatches}), 1 for an exact match. Exact match alone sits near 0 for a
   * small model; this shows a lossy rule's damage before it reaches whole lines.
   */
  public static double nextLineSimilarity(String output, String reference) {
    if (!output.startsWith("\n")) {
      return 0;
    }
    int end = output.indexOf('\n', 1);
    String a = (end < 0 ? output.substring(1) : output.substring(1, end)).stripTrailing();
    String b = reference.stripTrailing();
    int longer = Math.max(a.length(), b.length());
    return longer == 0 ? 1 : 1 - (double) Quality.editDistance(a.codePoints().toArray(), b.codePoints().toArray()) / longer;
  }

  public static List<Row> run(Config c, Consumer<String> log) {
    List<Double> gaps = new ArrayList<>();
    gaps.add(0.0);
    c.gaps().stream().filter(g -> g > 0 && !gaps.contains(g)).forEach(gaps::add);
    int nt = c.temperatures().size();
    int ng = gaps.size();
    int np = c.prompts().size();
    GenerationResult[][][] results = new GenerationResult[nt][ng][np];
    try (LocalGenerator gen = new LocalGenerator(c.target(), c.draft(), RunnerOptions.defaults().withThreads(c.threads()))) {
      RuleChoice[] rules = new RuleChoice[ng];
      for (int g = 0; g < ng; g++) {
        rules[g] = gen.rules().withAdaptiveMaxGap(gaps.get(g));
      }
      gen.generate(request(c, c.prompts().get(0), 0, 0, false), TokenSink.NONE); // warm-up, not measured
      Random order = new Random(c.seed());
      List<int[]> pairs = new ArrayList<>();
      for (int t = 0; t < nt; t++) {
        for (int g = 0; g < ng; g++) {
          pairs.add(new int[] {t, g});
        }
      }
      for (int p = 0; p < np; p++) {
        Collections.shuffle(pairs, order);
        for (int[] tg : pairs) {
          GenerationRequest req = request(c, c.prompts().get(p), c.temperatures().get(tg[0]), p, tg[1] > 0);
          results[tg[0]][tg[1]][p] = gen.generate(req, TokenSink.NONE, SpeculativeLoop.RoundListener.NONE, rules[tg[1]]);
        }
        if ((p + 1) % 10 == 0 || p + 1 == np) {
          log.accept("prompts done: " + (p + 1) + "/" + np);
        }
      }
    }
    List<Row> rows = new ArrayList<>();
    for (int t = 0; t < nt; t++) {
      for (int g = 0; g < ng; g++) {
        rows.add(row(c, c.temperatures().get(t), gaps.get(g), results[t][g], results[t][0]));
      }
    }
    return rows;
  }

  private static GenerationRequest request(Config c, Prompt p, double temperature, int index, boolean adaptive) {
    return new GenerationRequest(p.prompt(), c.maxTokens(), temperature, temperature > 0 ? c.topP() : 1.0,
        c.seed() + index, c.k(), adaptive, List.of());
  }

  private static Row row(Config c, double temperature, double gap, GenerationResult[] rs, GenerationResult[] lossless) {
    int tokens = 0;
    long drafted = 0;
    long accepted = 0;
    int rounds = 0;
    double seconds = 0;
    int exact = 0;
    double similar = 0;
    double d3 = 0;
    double d4 = 0;
    double[] first = new double[rs.length];
    double edit = 0;
    for (int i = 0; i < rs.length; i++) {
      GenerationResult r = rs[i];
      tokens += r.tokenIds().length;
      drafted += r.draftedTokens();
      accepted += r.acceptedTokens();
      rounds += r.rounds();
      seconds += r.seconds();
      exact += nextLineMatches(r.text(), c.prompts().get(i).reference()) ? 1 : 0;
      similar += nextLineSimilarity(r.text(), c.prompts().get(i).reference());
      d3 += Quality.distinctN(r.tokenIds(), 3);
      d4 += Quality.distinctN(r.tokenIds(), 4);
      first[i] = Quality.firstDivergence(r.tokenIds(), lossless[i].tokenIds());
      edit += Quality.editDistance(r.tokenIds(), lossless[i].tokenIds());
    }
    int n = rs.length;
    boolean base = gap == 0;
    return new Row(sampling(temperature), base ? "lossless" : "adaptive", gap, n, tokens, seconds, tokens / seconds,
        drafted == 0 ? 0 : (double) accepted / drafted, (double) tokens / rounds, (double) exact / n, similar / n,
        d3 / n, d4 / n,
        base ? Double.NaN : PipelineBench.median(first), base ? Double.NaN : edit / n);
  }

  static String sampling(double temperature) {
    return temperature == 0 ? "greedy" : "T=" + temperature;
  }

  public static String header() {
    return String.format("%7s %9s %6s %7s %8s %7s %8s %7s %7s %7s %7s %6s %6s", "sample", "mode", "gap", "tokens",
        "tok/s", "accept", "tok/rnd", "line=", "line~", "dist3", "dist4", "div@", "edit");
  }

  public static String format(Row r) {
    return String.format("%7s %9s %6.3f %7d %8.2f %7.3f %8.3f %7.3f %7.3f %7.3f %7.3f %6.1f %6.1f", r.sampling(),
        r.mode(), r.maxGap(), r.tokens(), r.tokensPerSecond(), r.acceptance(), r.tokensPerRound(), r.nextLineExact(),
        r.nextLineSimilarity(), r.distinct3(), r.distinct4(), r.medianFirstDivergence(), r.meanEditDistance());
  }

  /** The rows with what they were measured on; {@code extra} (may be null) is merged in (e.g. the calibration choice). */
  public static void writeJson(List<Row> rows, Config c, String promptSet, String command, ObjectNode extra, Path file)
      throws IOException {
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    o.put("command", command);
    o.put("target", c.target().toString());
    o.put("draft", c.draft().toString());
    o.put("prompt_set", promptSet);
    o.put("prompts", c.prompts().size());
    o.put("max_tokens", c.maxTokens());
    o.put("k", c.k());
    o.put("top_p", c.topP());
    o.put("seed", c.seed());
    o.put("threads", c.threads());
    o.put("cores", Runtime.getRuntime().availableProcessors());
    o.put("timing", "wall clock per generation in this process (prompt encoding, prefill, decoding); no network");
    if (extra != null) {
      o.setAll(extra);
    }
    ArrayNode arr = o.putArray("rows");
    for (Row r : rows) {
      ObjectNode n = m.valueToTree(r);
      if (Double.isNaN(r.medianFirstDivergence())) {
        n.putNull("medianFirstDivergence");
        n.putNull("meanEditDistance");
      }
      arr.add(n);
    }
    Files.writeString(file, m.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n");
  }
}
