package dev.dsd.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.client.RemoteGenerator;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.time.Duration;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = {
      "Continue a prompt, streaming the text as it is produced.",
      "Without --model it runs on the bundled pair: models/pycoder-target verifies what",
      "models/pycoder-draft proposes (speculative decoding; greedy output is exactly the target's)."
    },
    footer = {
      "",
      "Examples:",
      "  dsd generate \"def fibonacci(n):\"",
      "  dsd generate --max-tokens 64 --temperature 0.8 --top-p 0.95 --seed 7 \"import os\"",
      "  echo 'class Stack:' | dsd generate --json -",
      "  dsd generate --spec off \"def parse(line):\"        # target alone",
      "  dsd generate --model ~/models/TinyLlama-1.1B \"The capital of France is\"",
      "  dsd generate --peer /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... \"def add(a, b):\"   # on a swarm",
      "  dsd generate --peer http://127.0.0.1:8080 \"def add(a, b):\"                      # through a node's HTTP API"
    })
final class GenerateCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "PROMPT", description = "The prompt; '-' reads it from standard input.")
  String prompt;

  @Option(names = "--peer", paramLabel = "MULTIADDR|URL", description = {"Hand the prompt to this swarm member (a multiaddr",
      "with /p2p/ID, or the http:// URL of its API), which coordinates it across the swarm. Default: run locally."})
  String peer;

  @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face model directory (default: bundled).")
  Path model;

  @Option(names = "--draft", paramLabel = "DIR", description = "Draft model for speculative decoding (default: bundled draft when --model is not given).")
  Path draft;

  @Option(names = "--spec", paramLabel = "off|K|auto", defaultValue = "auto",
      description = {"Draft tokens verified per target pass: off, a fixed K, or auto (adaptive window chosen",
          "from measured acceptance and timings). Default: ${DEFAULT-VALUE} when a draft is present."})
  String spec;

  @Option(names = "--adaptive", description = {"Adaptive verification (DSD): accept unimportant draft tokens",
      "(whitespace, punctuation, keywords) the target finds plausible. LOSSY: output may differ from the target's."})
  boolean adaptive;

  @Option(names = "--max-tokens", defaultValue = "128", description = "New tokens at most (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 is greedy (default: ${DEFAULT-VALUE}).")
  double temperature;

  @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling mass (default: ${DEFAULT-VALUE}).")
  double topP;

  @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--stop", paramLabel = "TEXT", description = "Stop when this text appears (repeatable).")
  List<String> stop = List.of();

  @Option(names = "--threads", defaultValue = "0", description = "ONNX Runtime threads, 0 = all cores.")
  int threads;

  @picocli.CommandLine.Mixin
  WeightOptions weightOptions = new WeightOptions();

  @Option(names = "--json", description = "Print one JSON object (text, token_ids, tokens_per_second, ...) instead of streaming.")
  boolean json;

  @Override
  public Integer call() throws IOException {
    String text = prompt.equals("-") ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : prompt;
    int k = parseSpec(spec);
    GenerationRequest req = new GenerationRequest(text, maxTokens, temperature, topP, seed, k, adaptive, stop);
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (Generator gen = open(k)) {
      GenerationResult r = gen.generate(req, (piece, ids) -> {
        if (!json) {
          out.print(piece);
          out.flush();
        }
        return true;
      });
      if (json) {
        out.println(toJson(r));
      } else {
        out.println();
      }
    }
    return 0;
  }

  private Generator open(int k) {
    if (peer != null) {
      if (model != null || draft != null) {
        throw new CliException("--peer runs on the swarm's models; --model and --draft are for local runs");
      }
      if (peer.startsWith("http://") || peer.startsWith("https://")) {
        return new dev.dsd.node.client.HttpGenerator(peer);
      }
      Multiaddr addr;
      try {
        addr = Multiaddr.parse(peer);
      } catch (RuntimeException e) {
        throw new CliException("--peer must be a multiaddr like /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...: " + e.getMessage());
      }
      return new RemoteGenerator(addr, Duration.ofMinutes(5));
    }
    Path dir = model != null ? model : Defaults.targetModel();
    Path draftDir = k == 0 ? null : draft != null ? draft : model == null ? Defaults.draftModel() : null;
    return new LocalGenerator(dir, draftDir, dev.dsd.pipeline.runtime.RunnerOptions.defaults().withThreads(threads)
        .withWeights(weightOptions.format()).withCacheDir(weightOptions.cacheDir()));
  }

  static int parseSpec(String s) {
    if (s.equals("off")) {
      return 0;
    }
    if (s.equals("auto")) {
      return GenerationRequest.AUTO;
    }
    try {
      int k = Integer.parseInt(s);
      if (k >= 0 && k <= 32) {
        return k;
      }
    } catch (NumberFormatException ignored) {
      // falls through to the error
    }
    throw new CliException("--spec must be off, auto or a window K in 0..32, got '" + s + "'");
  }

  static String toJson(GenerationResult r) throws IOException {
    ObjectMapper m = new ObjectMapper();
    ObjectNode o = m.createObjectNode();
    o.put("text", r.text());
    var ids = o.putArray("token_ids");
    for (int id : r.tokenIds()) {
      ids.add(id);
    }
    o.put("prompt_tokens", r.promptTokens());
    o.put("completion_tokens", r.tokenIds().length);
    o.put("finish_reason", r.finishReason());
    o.put("seconds", r.seconds());
    o.put("tokens_per_second", r.tokensPerSecond());
    o.put("rounds", r.rounds());
    o.put("drafted_tokens", r.draftedTokens());
    o.put("accepted_tokens", r.acceptedTokens());
    o.put("acceptance_rate", r.acceptanceRate());
    o.put("bytes_sent", r.bytesSent());
    var route = o.putArray("route");
    r.route().forEach(route::add);
    return m.writeValueAsString(o);
  }
}
