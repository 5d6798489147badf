package dev.dsd.testnet.sim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * How many drafts the real target accepted, recorded once per prompt and replayed by the simulator.
 *
 * <p>Greedy (temperature 0): the draft is deterministic given the context and the context is always
 * the target's own output, so one number per output position says it all: {@code match[p]}, how
 * many of the drafter's proposals from position p agree with the target. A round of window k at p
 * accepts {@code min(k, match[p])}, exactly, whatever k a policy picks.
 *
 * <p>Sampled: acceptance is random. The recorder runs the real loop with fixed windows and keeps
 * each round's accepted count; a replay with one of those windows takes the recorded rounds in
 * order, and any other window draws each draft's acceptance at the prompt's measured per-token rate.
 *
 * <pre>
 * {"format": "dsd-acceptance-trace/1", "target": "...", "draft": "...", "drafter": "model",
 *  "temperature": 0.0, "max_tokens": 48, "max_window": 16,
 *  "prompts": [{"prompt_tokens": 64, "tokens": 48, "match": [3, 2, ...]},
 *              {"prompt_tokens": 60, "tokens": 48, "rate": 0.21, "rounds": {"4": [1, 0, 4, ...]}}]}
 * </pre>
 */
public final class AcceptanceTrace {
  public static final String FORMAT = "dsd-acceptance-trace/1";
  /** Prompts one trace may hold. */
  public static final int MAX_PROMPTS = 10_000;
  /** Recorded values per prompt (positions or rounds). */
  public static final int MAX_VALUES = 100_000;

  /** One prompt's recording: {@code match} for greedy, else {@code rate} and {@code rounds} by window. */
  public record Prompt(int promptTokens, int tokens, int[] match, double rate, Map<Integer, int[]> rounds) {
    public Prompt {
      rounds = Map.copyOf(rounds);
    }

    /** Drafts a round of window {@code k} accepts at output position {@code pos}, its {@code round}-th round. */
    int accepted(int pos, int k, int round, SplittableRandom rng) {
      if (k <= 0) {
        return 0;
      }
      if (match != null) {
        return pos < match.length ? Math.min(k, match[pos]) : 0;
      }
      int[] r = rounds.get(k);
      if (r != null && r.length > 0) {
        return Math.min(k, r[round % r.length]);
      }
      int n = 0;
      while (n < k && rng.nextDouble() < rate) {
        n++;
      }
      return n;
    }
  }

  private final String target;
  private final String draft;
  private final String drafter;
  private final double temperature;
  private final int maxTokens;
  private final int maxWindow;
  private final List<Prompt> prompts;

  public AcceptanceTrace(String target, String draft, String drafter, double temperature, int maxTokens, int maxWindow,
      List<Prompt> prompts) {
    if (prompts.isEmpty() || prompts.size() > MAX_PROMPTS) {
      throw new IllegalArgumentException("a trace holds 1.." + MAX_PROMPTS + " prompts, got " + prompts.size());
    }
    this.target = target;
    this.draft = draft;
    this.drafter = drafter;
    this.temperature = temperature;
    this.maxTokens = maxTokens;
    this.maxWindow = maxWindow;
    this.prompts = List.copyOf(prompts);
  }

  public List<Prompt> prompts() {
    return prompts;
  }

  public double temperature() {
    return temperature;
  }

  public int maxTokens() {
    return maxTokens;
  }

  public String drafter() {
    return drafter;
  }

  /** Mean per-token acceptance a window of 4 sees on this trace, for reports. */
  public double meanAcceptance(int k) {
    double acc = 0;
    double drafted = 0;
    SplittableRandom rng = new SplittableRandom(1);
    for (Prompt p : prompts) {
      int pos = 0;
      int round = 0;
      while (pos < p.tokens()) {
        int a = p.accepted(pos, k, round++, rng);
        acc += a;
        drafted += k;
        pos += a + 1;
      }
    }
    return drafted == 0 ? 0 : acc / drafted;
  }

  public static AcceptanceTrace read(Path file) throws IOException {
    JsonNode root = new ObjectMapper().readTree(file.toFile());
    if (root == null || !FORMAT.equals(root.path("format").asText())) {
      throw new IllegalArgumentException(file + " is not an acceptance trace (\"format\": \"" + FORMAT + "\" missing)");
    }
    List<Prompt> ps = new ArrayList<>();
    for (JsonNode p : root.path("prompts")) {
      if (ps.size() == MAX_PROMPTS) {
        throw new IllegalArgumentException(file + ": more than " + MAX_PROMPTS + " prompts");
      }
      Map<Integer, int[]> rounds = new TreeMap<>();
      p.path("rounds").fields().forEachRemaining(e -> rounds.put(Integer.parseInt(e.getKey()), ints(e.getValue(), file)));
      ps.add(new Prompt(p.path("prompt_tokens").asInt(), p.path("tokens").asInt(),
          p.has("match") ? ints(p.path("match"), file) : null, p.path("rate").asDouble(0), rounds));
    }
    return new AcceptanceTrace(root.path("target").asText(), root.path("draft").asText(), root.path("drafter").asText(),
        root.path("temperature").asDouble(), root.path("max_tokens").asInt(), root.path("max_window").asInt(), ps);
  }

  private static int[] ints(JsonNode a, Path file) {
    if (a.size() > MAX_VALUES) {
      throw new IllegalArgumentException(file + ": a list of " + a.size() + " values, limit " + MAX_VALUES);
    }
    int[] v = new int[a.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = a.get(i).asInt();
      if (v[i] < 0) {
        throw new IllegalArgumentException(file + ": negative accepted count " + v[i]);
      }
    }
    return v;
  }

  public void write(Path file) throws IOException {
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = om.createObjectNode();
    root.put("format", FORMAT).put("target", target).put("draft", draft).put("drafter", drafter)
        .put("temperature", temperature).put("max_tokens", maxTokens).put("max_window", maxWindow);
    ArrayNode arr = root.putArray("prompts");
    for (Prompt p : prompts) {
      ObjectNode o = arr.addObject().put("prompt_tokens", p.promptTokens()).put("tokens", p.tokens());
      if (p.match() != null) {
        ArrayNode m = o.putArray("match");
        for (int v : p.match()) {
          m.add(v);
        }
      } else {
        o.put("rate", p.rate());
        ObjectNode r = o.putObject("rounds");
        p.rounds().entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
          ArrayNode a = r.putArray(Integer.toString(e.getKey()));
          for (int v : e.getValue()) {
            a.add(v);
          }
        });
      }
    }
    // one prompt per line keeps the shipped trace diffable without a pretty printer's thousand lines
    StringBuilder sb = new StringBuilder();
    String head = om.writeValueAsString(root.deepCopy().without("prompts"));
    sb.append(head, 0, head.length() - 1).append(",\"prompts\":[\n");
    for (int i = 0; i < arr.size(); i++) {
      sb.append(om.writeValueAsString(arr.get(i))).append(i + 1 < arr.size() ? ",\n" : "\n");
    }
    sb.append("]}\n");
    Files.writeString(file, sb.toString());
  }
}
