package dev.dsd.testnet;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.stage.HostedShard;
import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.entry.PipelineTargetPass;
import dev.dsd.node.routing.Route;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.runtime.ShardRunner;
import dev.dsd.pipeline.runtime.ShardSession;
import dev.dsd.verification.sampling.Distributions;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

/**
 * {@code dsd bench pipeline}: the target cut into N stages, each a libp2p host in this process
 * behind its own {@link LinkEmulator} relay (so every message between nodes pays the one-way
 * latency, as on a real network, without the nodes knowing), an entry that drafts with the draft
 * model, and the same held-out prompts under each decoding mode. Reports tokens/s, acceptance,
 * rounds and bytes per token, and the target's NLL of what was generated (lossy modes must not
 * make the output worse than the target's own choice by much). Each run is timed whole, session
 * setup and time to first token included; modes and sampling settings run in a seeded shuffled
 * order per latency, printed with the results; acceptance is also given on rounds that repeat no
 * earlier text ({@link RoundNovelty}).
 */
public final class PipelineBench {
  /**
   * A decoding mode: window (0 off, K, or AUTO), whether verification is adaptive, whether rounds go
   * pipelined (several in flight; the {@code pipe-} modes) or synchronously, and the token tree (0: a
   * chain of drafts; N draft nodes per round; AUTO: the budget controller).
   */
  public record Mode(String name, int window, boolean adaptive, boolean pipelined, int tree, int depth) {
    public Mode(String name, int window, boolean adaptive) {
      this(name, window, adaptive, false, 0, 0);
    }

    public Mode(String name, int window, boolean adaptive, boolean pipelined, int tree) {
      this(name, window, adaptive, pipelined, tree, 0);
    }

    public static Mode parse(String s) {
      if (s.startsWith("pipe-")) {
        String rest = s.substring(5);
        int depth = 0;
        java.util.regex.Matcher fixed = java.util.regex.Pattern.compile("(k[0-9]+)d([0-9]+)").matcher(rest);
        if (fixed.matches()) { // pipe-k8d4: window 8, 4 rounds in flight, whatever the controller would pick
          rest = fixed.group(1);
          depth = Integer.parseInt(fixed.group(2));
          if (depth < 1 || depth > dev.dsd.verification.window.PipelineController.MAX_DEPTH) {
            throw new IllegalArgumentException("depth must be 1.." + dev.dsd.verification.window.PipelineController
                .MAX_DEPTH + ", got " + s);
          }
        }
        Mode m = parse(rest);
        if (m.window() == 0) {
          throw new IllegalArgumentException("pipelining needs drafts: pipe-off is not a mode");
        }
        return new Mode(s, m.window(), m.adaptive(), true, m.tree(), depth);
      }
      return switch (s) {
        case "off" -> new Mode("off", 0, false);
        case "auto" -> new Mode("auto", GenerationRequest.AUTO, false);
        case "learned" -> new Mode("learned", GenerationRequest.LEARNED, false);
        case "adaptive" -> new Mode("adaptive", GenerationRequest.AUTO, true);
        case "tree-auto" -> new Mode("tree-auto", GenerationRequest.AUTO, false, false, GenerationRequest.AUTO);
        default -> {
          if (s.matches("tree[0-9]+")) {
            yield new Mode(s, GenerationRequest.AUTO, false, false, Integer.parseInt(s.substring(4)));
          }
          if (!s.matches("k[0-9]+")) {
            throw new IllegalArgumentException("mode must be off, kN (e.g. k4), auto, learned, adaptive, treeN (e.g. "
                + "tree16), tree-auto, or pipe- and one of kN, auto, adaptive, got " + s);
          }
          yield new Mode(s, Integer.parseInt(s.substring(1)), false);
        }
      };
    }
  }

  /** How tokens are chosen: greedy, or sampled at a temperature and top-p (each prompt with its own seed). */
  public record Sampling(String name, double temperature, double topP) {
    public static final Sampling GREEDY = new Sampling("greedy", 0, 1);
    /** The chat-like setting the issue asks to report next to greedy. */
    public static final Sampling SAMPLED = new Sampling("T0.8", 0.8, 0.95);

    public static Sampling parse(String s) {
      return switch (s) {
        case "greedy" -> GREEDY;
        case "sampled" -> SAMPLED;
        default -> throw new IllegalArgumentException("sampling must be greedy or sampled, got " + s);
      };
    }
  }

  /**
   * @param bandwidthMbit each link's rate cap in Mbit/s, 0 for none
   * @param orderSeed seeds the shuffle of the (sampling, mode) runs at each latency, so that no mode
   *     always runs first (on a warm or a cold machine)
   */
  public record Config(Path target, Path draft, int stages, List<Double> latenciesMs, List<String> prompts,
      int maxTokens, List<Mode> modes, int threads, List<Sampling> samplings, double bandwidthMbit, long orderSeed) {}

  /**
   * One mode at one latency. Times are wall clock around each whole generation: finding the route,
   * opening the session on every stage, prefill and decoding.
   *
   * @param medianFirstTokenMs median over prompts of the time to the first token (setup included)
   * @param novelAcceptance acceptance on rounds that repeat no earlier 4-gram ({@link RoundNovelty})
   * @param novelRoundShare share of rounds that count as novel
   * @param distinct4 mean over prompts of distinct / all 4-grams of the output's token ids (1: no repeats)
   * @param medianFirstDivergence greedy only: median over prompts of the first token index where the
   *     output differs from the lossless ({@code off}) output, its length where it never does; NaN otherwise
   * @param meanEditDistance greedy only: mean token edit distance to the lossless output
   */
  public record Row(double latencyMs, String sampling, String mode, int prompts, int tokens, double seconds,
      double tokensPerSecond, double medianPromptTokensPerSecond, double medianFirstTokenMs, double acceptance,
      double novelAcceptance, double novelRoundShare, double roundsPerToken, double bytesPerToken, double outputNll,
      double distinct4, double medianFirstDivergence, double meanEditDistance) {}

  private PipelineBench() {}

  public static List<Row> run(Config c, Consumer<String> progress) throws IOException {
    List<Row> rows = new ArrayList<>();
    try (Checkpoint ck = Checkpoint.open(c.target());
        DraftModel draft = DraftModel.load(c.draft(), ck.config().vocabSize(), ck.tokenizer().vocabSize(), c.threads());
        ShardRunner whole = new ShardRunner(ck.config(), ck.weights(), 0, ck.config().numLayers(),
            RunnerOptions.defaults().withThreads(c.threads()))) {
      int layers = ck.config().numLayers();
      if (c.stages() < 1 || c.stages() > layers) {
        throw new IllegalArgumentException("stages must be 1.." + layers + ", got " + c.stages());
      }
      Random order = new Random(c.orderSeed());
      for (double latency : c.latenciesMs()) {
        try (Swarm swarm = new Swarm(c, layers, new LinkProfile(latency, 0, c.bandwidthMbit()))) {
          List<RoundNovelty.Round> rounds = new ArrayList<>();
          PipelineGenerator gen = new PipelineGenerator(swarm.entry, ck.tokenizer(), ck.config(),
              PipelineGenerator.RouteSource.of(swarm.route), draft::newDrafter, PipelineTargetPass.Options.greedy())
              .withTreeDrafters(draft::newTreeDrafter)
              .withAdaptiveMaxGap(dev.dsd.node.generate.AdaptiveCalibration.maxGap(c.target()))
              .withRoundListener((k, accepted, d, v) -> rounds.add(new RoundNovelty.Round(k, accepted)));
          // warms the JIT and the connections once per swarm and sampling setting, for every mode alike; not measured
          for (Sampling sp : c.samplings()) {
            for (boolean pipelined : new boolean[] {false, true}) {
              // two rounds in flight whatever the controller thinks, so the first measured pipelined
              // generation does not pay for loading and compiling the in-flight and cancel paths
              gen.withFixedDepth(pipelined ? 2 : 0);
              gen.generate(new GenerationRequest(c.prompts().get(0), 8, sp.temperature(), sp.topP(), 0, 4, false,
                  List.of()).withPipelined(pipelined), TokenSink.NONE);
            }
            gen.withFixedDepth(0);
            if (c.modes().stream().anyMatch(m -> m.tree() != 0)) {
              gen.generate(new GenerationRequest(c.prompts().get(0), 8, sp.temperature(), sp.topP(), 0, 4, false,
                  List.of()).withTree(8), TokenSink.NONE);
            }
          }
          List<Object[]> runs = new ArrayList<>();
          for (Sampling sampling : c.samplings()) {
            for (Mode m : c.modes()) {
              runs.add(new Object[] {sampling, m});
            }
          }
          Collections.shuffle(runs, order);
          progress.accept(String.format("# latency %.1f ms: order %s", latency, runs.stream()
              .map(r -> ((Sampling) r[0]).name() + "/" + ((Mode) r[1]).name()).toList()));
          java.util.Map<String, int[][]> outputs = new java.util.HashMap<>();
          List<Row> here = new ArrayList<>();
          for (Object[] run : runs) {
            int[][] out = new int[c.prompts().size()][];
            Row row = measure(c, gen, whole, ck, latency, (Sampling) run[0], (Mode) run[1], rounds, out);
            outputs.put(row.sampling() + "/" + row.mode(), out);
            here.add(row);
            progress.accept(format(row));
          }
          for (Row r : here) {
            rows.add(Quality.annotate(r, outputs.get(r.sampling() + "/" + r.mode()), outputs.get(r.sampling() + "/off")));
          }
        }
      }
    }
    rows.sort(Comparator.comparingDouble(Row::latencyMs).thenComparing(Row::sampling)
        .thenComparing(r -> c.modes().stream().map(Mode::name).toList().indexOf(r.mode())));
    return rows;
  }

  private static Row measure(Config c, PipelineGenerator gen, ShardRunner whole, Checkpoint ck, double latency,
      Sampling sampling, Mode m, List<RoundNovelty.Round> rounds, int[][] outputs) {
    int tokens = 0;
    double seconds = 0;
    long roundCount = 0;
    long drafted = 0;
    long accepted = 0;
    long bytes = 0;
    double nll = 0;
    RoundNovelty.Tally novel = RoundNovelty.EMPTY;
    double[] perPrompt = new double[c.prompts().size()];
    double[] firstToken = new double[c.prompts().size()];
    for (int i = 0; i < c.prompts().size(); i++) {
      GenerationRequest req = new GenerationRequest(c.prompts().get(i), c.maxTokens(), sampling.temperature(),
          sampling.topP(), 1000 + i, m.window(), m.adaptive(), List.of()).withPipelined(m.pipelined())
          .withTree(m.tree());
      rounds.clear();
      gen.withFixedDepth(m.depth());
      GenerationResult r = gen.generate(req, TokenSink.NONE);
      int[] prompt = ck.tokenizer().encode(c.prompts().get(i));
      tokens += r.tokenIds().length;
      seconds += r.seconds();
      roundCount += r.rounds();
      drafted += r.draftedTokens();
      accepted += r.acceptedTokens();
      bytes += r.bytesSent();
      nll += outputNll(whole, prompt, r.tokenIds());
      novel = novel.plus(RoundNovelty.of(prompt, r.tokenIds(), rounds));
      perPrompt[i] = r.tokensPerSecond();
      firstToken[i] = r.firstTokenSeconds() * 1000;
      outputs[i] = r.tokenIds();
    }
    return new Row(latency, sampling.name(), m.name(), c.prompts().size(), tokens, seconds, tokens / seconds,
        median(perPrompt), median(firstToken), drafted == 0 ? 0 : (double) accepted / drafted, novel.acceptance(),
        novel.novelShare(), (double) roundCount / tokens, (double) bytes / tokens, nll / tokens, Double.NaN, Double.NaN,
        Double.NaN);
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  /** Sum over the output of -log p_target(token | everything before it). */
  static double outputNll(ShardRunner whole, int[] prompt, int[] output) {
    if (output.length == 0) {
      return 0;
    }
    int[] all = Arrays.copyOf(prompt, prompt.length + output.length);
    System.arraycopy(output, 0, all, prompt.length, output.length);
    int vocab = whole.config().vocabSize();
    try (ShardSession s = whole.openSession("nll-" + System.nanoTime(), "bench", all.length)) {
      float[] logits = whole.forwardTokens(s, all);
      double sum = 0;
      for (int i = 0; i < output.length; i++) {
        int row = (prompt.length - 1 + i) * vocab;
        sum -= Math.log(Distributions.softmax(logits, row, vocab, 1.0)[output[i]]);
      }
      return sum;
    }
  }

  public static String header() {
    return String.format("%7s %7s %9s %7s %8s %8s %8s %7s %8s %7s %8s %7s %9s %8s %7s %6s %6s", "lat ms", "sample",
        "mode", "tokens", "tok/s", "median", "ttft ms", "accept", "novel a", "novel%", "rnd/tok", "tok/rnd", "bytes/tok",
        "nll/tok", "dist4", "div@", "edit");
  }

  public static String format(Row r) {
    return String.format("%7.1f %7s %9s %7d %8.2f %8.2f %8.1f %7.3f %8.3f %7.2f %8.3f %7.2f %9.0f %8.4f %7.3f %6.1f %6.1f",
        r.latencyMs(), r.sampling(), r.mode(), r.tokens(), r.tokensPerSecond(), r.medianPromptTokensPerSecond(),
        r.medianFirstTokenMs(), r.acceptance(), r.novelAcceptance(), r.novelRoundShare(), r.roundsPerToken(),
        1 / r.roundsPerToken(), r.bytesPerToken(), r.outputNll(), r.distinct4(), r.medianFirstDivergence(), r.meanEditDistance());
  }

  /**
   * Speedup of each mode over {@code off} at the same latency, of each pipelined mode over its
   * synchronous one, and of each tree mode over the chain ({@code auto}) in tok/s and tokens per round.
   */
  public static String ratios(List<Row> rows) {
    StringBuilder b = new StringBuilder();
    for (Row r : rows) {
      if (!r.mode().startsWith("tree")) {
        continue;
      }
      rows.stream().filter(o -> o.latencyMs() == r.latencyMs() && o.sampling().equals(r.sampling())
          && o.mode().equals("auto")).findFirst().ifPresent(chain -> b.append(String.format(
              "latency %.0f ms %s: %s / auto (chain) = %.2fx tok/s, %.2fx tokens per round%n", r.latencyMs(),
              r.sampling(), r.mode(), r.tokensPerSecond() / chain.tokensPerSecond(),
              chain.roundsPerToken() / r.roundsPerToken())));
    }
    for (Row r : rows) {
      if (!r.mode().startsWith("pipe-")) {
        continue;
      }
      String sync = r.mode().substring(5).replaceAll("^(k[0-9]+)d[0-9]+$", "$1");
      rows.stream().filter(o -> o.latencyMs() == r.latencyMs() && o.sampling().equals(r.sampling())
          && o.mode().equals(sync)).findFirst().ifPresent(o -> b.append(String.format(
              "latency %.0f ms %s: %s / %s = %.2fx%n", r.latencyMs(), r.sampling(), r.mode(), sync,
              r.tokensPerSecond() / o.tokensPerSecond())));
    }
    for (Row r : rows) {
      rows.stream().filter(o -> o.latencyMs() == r.latencyMs() && o.sampling().equals(r.sampling())
          && o.mode().equals("off")).findFirst().ifPresent(off -> {
        if (!r.mode().equals("off")) {
          b.append(String.format("latency %.0f ms %s: %s / off = %.2fx%n", r.latencyMs(), r.sampling(), r.mode(),
              r.tokensPerSecond() / off.tokensPerSecond()));
        }
      });
    }
    return b.toString();
  }

  public static void writeJson(List<Row> rows, Config c, Path file) throws IOException {
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    o.put("target", c.target().toString());
    o.put("draft", c.draft().toString());
    o.put("stages", c.stages());
    o.put("max_tokens", c.maxTokens());
    o.put("prompts", c.prompts().size());
    o.put("cores", Runtime.getRuntime().availableProcessors());
    o.put("bandwidth_mbit", c.bandwidthMbit());
    o.put("order_seed", c.orderSeed());
    o.put("timing", "wall clock per generation: route, session setup on every stage, prefill and decoding");
    ArrayNode arr = o.putArray("rows");
    for (Row r : rows) {
      arr.add(m.valueToTree(r));
    }
    Files.writeString(file, m.writerWithDefaultPrettyPrinter().writeValueAsString(o));
  }

  /** N stage hosts and an entry, each behind a relay with the link profile. */
  private static final class Swarm implements AutoCloseable {
    final List<AutoCloseable> parts = new ArrayList<>();
    final LinkEmulator links = new LinkEmulator();
    final PipelineService entry;
    final Route route;

    Swarm(Config c, int layers, LinkProfile profile) {
      try {
        List<Route.Stage> stages = new ArrayList<>();
        String modelId = null;
        for (int i = 0; i < c.stages(); i++) {
          int from = layers * i / c.stages();
          int to = layers * (i + 1) / c.stages();
          HostedShard shard = HostedShard.load(c.target(), from, to, RunnerOptions.defaults().withThreads(c.threads()));
          parts.add(shard);
          modelId = shard.modelId();
          NettyHost h = relayed(profile);
          parts.add(new PipelineService(h, List.of(shard), 2));
          stages.add(new Route.Stage(h.peerId(), h.advertisedAddrs(), from, to));
        }
        NettyHost e = relayed(profile);
        entry = new PipelineService(e, List.of(), 2);
        parts.add(entry);
        route = new Route(modelId, stages, 0);
      } catch (RuntimeException ex) {
        close();
        throw ex;
      }
    }

    /** A host whose advertised address is a relay in front of it: everything sent to it is delayed. */
    private NettyHost relayed(LinkProfile profile) {
      InetSocketAddress listen = new InetSocketAddress("127.0.0.1", freePort());
      InetSocketAddress relay;
      try {
        relay = links.relay(new InetSocketAddress("127.0.0.1", 0), listen, profile);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      HostConfig base = HostConfig.loopback();
      NettyHost h = new NettyHost(Identity.generate(), new HostConfig(List.of(Multiaddr.tcp(listen)),
          List.of(Multiaddr.tcp(relay)), base.maxConnections(), base.dialTimeout(), base.maxBackoff(), "dsd-bench"))
          .start();
      parts.add(h);
      return h;
    }

    /** The relay must know the host's port before the host announces the relay: pick one first. */
    private static int freePort() {
      try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
        return s.getLocalPort();
      } catch (IOException e) {
        throw new IllegalStateException("no free port: " + e.getMessage(), e);
      }
    }

    @Override
    public void close() {
      for (int i = parts.size() - 1; i >= 0; i--) {
        try {
          parts.get(i).close();
        } catch (Exception ignored) {
          // closing what could be started; the first failure is already being reported
        }
      }
      links.close();
    }
  }
}
