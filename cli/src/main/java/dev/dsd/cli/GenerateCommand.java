package dev.dsd.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dsd.node.generate.GenerationDefaults;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.TokenChoice;
import dev.dsd.verification.processing.Penalties;
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

  @Option(names = "--spec", paramLabel = "off|K|auto|learned", defaultValue = "auto",
      description = {"Draft tokens verified per target pass: off, a fixed K, auto (adaptive window chosen",
          "from measured acceptance and timings), or learned (the same, with a learned model of how far",
          "drafts survive). Default: ${DEFAULT-VALUE} when a draft is present."})
  String spec;

  @Option(names = "--tree", paramLabel = "off|N|auto",
      description = {"Token-tree speculation: the draft proposes a tree of candidates (wide where it is unsure,",
          "deep where it is sure) verified in one pass: off (a chain), N draft nodes per round, or auto",
          "(budget chosen each round from acceptance and timings). Default: the faster one in",
          "`dsd bench pipeline` (README)."})
  String tree;

  @Option(names = "--adaptive", description = {"Adaptive verification (DSD): also accept unimportant draft tokens",
      "(whitespace, punctuation, keywords) where the target itself is unsure (its choice leads by less than the",
      "model's calibrated gap, adaptive-verification.json). LOSSY: output may differ from the target's."})
  boolean adaptive;

  @Option(names = "--max-tokens", defaultValue = "128", description = "New tokens at most (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--temperature", description = {"0 is greedy (default: the model's generation_config.json,",
      "else 0)."})
  Double temperature;

  @Option(names = "--top-p", description = "Nucleus sampling mass (default: generation_config.json, else 1).")
  Double topP;

  @Option(names = "--repetition-penalty", paramLabel = "X", description = {"Hugging Face repetition penalty over prompt",
      "and output, > 0; 1 is off (default: generation_config.json, else 1)."})
  Double repetitionPenalty;

  @Option(names = "--presence-penalty", paramLabel = "X", defaultValue = "0",
      description = "OpenAI presence penalty over generated tokens, -2..2 (default: ${DEFAULT-VALUE}).")
  double presencePenalty;

  @Option(names = "--frequency-penalty", paramLabel = "X", defaultValue = "0",
      description = "OpenAI frequency penalty over generated tokens, -2..2 (default: ${DEFAULT-VALUE}).")
  double frequencyPenalty;

  @Option(names = "--logprobs", paramLabel = "N", description = {"With --json: each token's log-probability and the",
      "N most likely alternatives (0..20), from the target's processed logits."})
  Integer logprobs;

  @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--stop", paramLabel = "TEXT", description = "Stop when this text appears (repeatable).")
  List<String> stop = List.of();

  @Option(names = "--threads", defaultValue = "0", description = "ONNX Runtime threads, 0 = all cores.")
  int threads;

  @picocli.CommandLine.Mixin
  WeightOptions weightOptions = new WeightOptions();

  @Option(names = "--pipelined", negatable = true, description = {"With --peer: keep several rounds in flight along the",
      "pipeline (--no-pipelined: one at a time; default: the node's, see README)."})
  Boolean pipelined;

  @Option(names = "--json", description = "Print one JSON object (text, token_ids, tokens_per_second, ...) instead of streaming.")
  boolean json;

  @Override
  public Integer call() throws IOException {
    String text = prompt.equals("-") ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : prompt;
    int k = parseSpec(spec);
    // a swarm's node holds the model; locally the directory's generation_config.json fills unset values
    GenerationDefaults defaults = peer != null ? GenerationDefaults.NONE
        : GenerationDefaults.read(model != null ? model : Defaults.targetModel());
    Penalties penalties;
    try {
      penalties = new Penalties(defaults.repetitionPenalty(repetitionPenalty), presencePenalty, frequencyPenalty);
    } catch (IllegalArgumentException e) {
      throw new CliException(e.getMessage());
    }
    if (logprobs != null && !json) {
      throw new CliException("--logprobs needs --json, which prints them");
    }
    GenerationRequest req = new GenerationRequest(text, maxTokens, defaults.temperature(temperature, 0),
        defaults.topP(topP), seed, k, adaptive, stop, penalties,
        logprobs == null ? GenerationRequest.NO_LOGPROBS : logprobs, null, pipelined, parseTree(tree));
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

  static int parseTree(String s) {
    if (s == null) {
      return GenerationRequest.DEFAULT_TREE;
    }
    if (s.equals("off")) {
      return 0;
    }
    if (s.equals("auto")) {
      return GenerationRequest.AUTO;
    }
    try {
      int n = Integer.parseInt(s);
      if (n >= 0 && n <= GenerationRequest.MAX_TREE) {
        return n;
      }
    } catch (NumberFormatException ignored) {
      // falls through to the error
    }
    throw new CliException("--tree must be off, auto or N draft nodes in 0.." + GenerationRequest.MAX_TREE + ", got '"
        + s + "'");
  }

  static int parseSpec(String s) {
    if (s.equals("off")) {
      return 0;
    }
    if (s.equals("auto")) {
      return GenerationRequest.AUTO;
    }
    if (s.equals("learned")) {
      return GenerationRequest.LEARNED;
    }
    try {
      int k = Integer.parseInt(s);
      if (k >= 0 && k <= 32) {
        return k;
      }
    } catch (NumberFormatException ignored) {
      // falls through to the error
    }
    throw new CliException("--spec must be off, auto, learned or a window K in 0..32, got '" + s + "'");
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
    o.put("first_token_seconds", r.firstTokenSeconds());
    o.put("tokens_per_second", r.tokensPerSecond());
    o.put("rounds", r.rounds());
    o.put("drafted_tokens", r.draftedTokens());
    o.put("accepted_tokens", r.acceptedTokens());
    o.put("acceptance_rate", r.acceptanceRate());
    o.put("bytes_sent", r.bytesSent());
    var route = o.putArray("route");
    r.route().forEach(route::add);
    if (!r.logprobs().isEmpty()) {
      var lps = o.putArray("logprobs");
      for (TokenChoice t : r.logprobs()) {
        ObjectNode e = lps.addObject().put("token", t.token()).put("text", t.text()).put("logprob", t.logprob());
        var top = e.putArray("top");
        t.top().forEach(a -> top.addObject().put("token", a.token()).put("text", a.text()).put("logprob", a.logprob()));
      }
    }
    return m.writeValueAsString(o);
  }
}
