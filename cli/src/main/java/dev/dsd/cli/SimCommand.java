package dev.dsd.cli;

import dev.dsd.testnet.sim.AcceptanceTrace;
import dev.dsd.testnet.sim.Calibration;
import dev.dsd.testnet.sim.ComputeProfile;
import dev.dsd.testnet.sim.SimConfig;
import dev.dsd.testnet.sim.SimResult;
import dev.dsd.testnet.sim.Simulator;
import dev.dsd.testnet.sim.TraceCache;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "sim",
    mixinStandardHelpOptions = true,
    subcommands = {SimValidateCommand.class, SimTrainWindowCommand.class},
    description = {
      "Discrete-event simulation of a dsd swarm: stages with compute profiles measured by `dsd bench shard`,",
      "links, stage batching, the node's router and window policy, drafting on a draft node / the entry /",
      "prompt lookup, acceptance replayed from traces of the real model pair, arrivals and churn.",
      "Defaults model the swarm `testnet/up.sh` starts with the same flags: N stages, one draft node, one",
      "entry, every node behind its own link that delays what it receives by --latency."
    },
    footer = {"", "Examples:", "  dsd sim --stages 4 --latency 20 --spec auto --json",
        "  dsd sim --stages 2 --latency 5 --spec 4 --prompts my.txt --max-tokens 48 --temperature 0.8"})
final class SimCommand implements Callable<Integer> {
  @Option(names = "--stages", defaultValue = "4", description = "Layer ranges (default: ${DEFAULT-VALUE}).")
  int stages;

  @Option(names = "--replicas", defaultValue = "1", description = "Peers per layer range (default: ${DEFAULT-VALUE}).")
  int replicas;

  @Option(names = "--layers", description = "Layers of the simulated model (default: the profile's).")
  Integer layers;

  @Option(names = "--latency", defaultValue = "0", description = "One-way link latency in ms (default: ${DEFAULT-VALUE}).")
  double latency;

  @Option(names = "--latency-max", description = "Draw each peer's latency from [--latency, this] ms.")
  Double latencyMax;

  @Option(names = "--jitter", defaultValue = "0", description = "Jitter in ms, uniform +-, never reordering.")
  double jitter;

  @Option(names = "--bandwidth", defaultValue = "0", description = "Link rate in Mbit/s, 0 for none.")
  double bandwidth;

  @Option(names = "--links", defaultValue = "testnet",
      description = "testnet: a message crosses its receiver's link (up.sh's relays); swarm: sender's and receiver's.")
  String links;

  @Option(names = "--spec", defaultValue = "auto", description = "off, K, auto or learned (default: ${DEFAULT-VALUE}).")
  String spec;

  @Option(names = "--concurrency", defaultValue = "1", description = "Generations at once per entry (default: ${DEFAULT-VALUE}).")
  int concurrency;

  @Option(names = "--requests", description = "Requests (default: one per prompt of the trace).")
  Integer requests;

  @Option(names = "--rate", defaultValue = "0", description = "Requests/s arriving (Poisson); 0: closed loop.")
  double rate;

  @Option(names = "--burst", defaultValue = "1", description = "Requests per arrival (bursty when > 1).")
  int burst;

  @Option(names = "--prompts", paramLabel = "FILE",
      description = "Prompts separated by lines holding only ---: runs the real pair on them for the acceptance trace.")
  Path prompts;

  @Option(names = "--trace", paramLabel = "FILE", description = "An acceptance trace to replay (default: the shipped one).")
  Path trace;

  @Option(names = "--save-trace", paramLabel = "FILE", description = "Also write the acceptance trace this run replayed.")
  Path saveTrace;

  @Option(names = "--max-tokens", defaultValue = "128", description = "New tokens per request (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 (greedy) or a sampling temperature.")
  double temperature;

  @Option(names = "--model", paramLabel = "DIR", description = "Target for traces (default: bundled).")
  Path model;

  @Option(names = "--draft", paramLabel = "DIR", description = "Draft for traces (default: bundled).")
  Path draft;

  @Option(names = "--drafting", defaultValue = "node", description = "node, entry, lookup or none (default: ${DEFAULT-VALUE}).")
  String drafting;

  @Option(names = "--draft-nodes", defaultValue = "1", description = "Draft nodes (default: ${DEFAULT-VALUE}).")
  int draftNodes;

  @Option(names = "--entries", defaultValue = "1", description = "Entries (default: ${DEFAULT-VALUE}).")
  int entries;

  @Option(names = "--batch-rows", defaultValue = "8", description = "Most sessions per stage call (default: ${DEFAULT-VALUE}).")
  int batchRows;

  @Option(names = "--batch-tokens", defaultValue = "256", description = "Most tokens per stage call (default: ${DEFAULT-VALUE}).")
  int batchTokens;

  @Option(names = "--draft-batch-rows", defaultValue = "8", description = "Most sessions per draft step (default: ${DEFAULT-VALUE}).")
  int draftBatchRows;

  @Option(names = "--max-sessions", defaultValue = "0", description = "Sessions a stage takes, 0: no limit.")
  int maxSessions;

  @Option(names = "--churn", defaultValue = "0", description = "Fraction of stage peers leaving per hour.")
  double churn;

  @Option(names = "--rejoin-s", defaultValue = "60", description = "Seconds until a replacement joins (default: ${DEFAULT-VALUE}).")
  double rejoinSeconds;

  @Option(names = "--weights", defaultValue = "f32", description = "Weights format in the profile (default: ${DEFAULT-VALUE}).")
  String weights;

  @Option(names = "--profile", paramLabel = "FILE", description = "Target compute profile (`dsd bench shard --profile`).")
  Path profile;

  @Option(names = "--draft-profile", paramLabel = "FILE", description = "Draft compute profile.")
  Path draftProfile;

  @Option(names = "--calibration", paramLabel = "FILE", description = "Per-hop/per-round costs (default: shipped).")
  Path calibration;

  @Option(names = "--seed", defaultValue = "1", description = "Seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--json", description = "Print the result as JSON.")
  boolean json;

  @Override
  public Integer call() throws IOException {
    SimInputs in = SimInputs.resolve(profile, draftProfile, calibration);
    AcceptanceTrace t = traceFor(in);
    if (saveTrace != null) {
      t.write(saveTrace);
    }
    int spk = parseSpec(spec);
    SimConfig c = new SimConfig(stages, replicas, layers != null ? layers : in.target().layers(), latency,
        latencyMax != null ? latencyMax : latency, jitter, bandwidth, linksTestnet(links), spk, concurrency,
        requests != null ? requests : t.prompts().size(), rate, burst, maxTokens, drafting, draftNodes, entries,
        batchRows, batchTokens, draftBatchRows, maxSessions, churn, rejoinSeconds * 1000, weights, in.cal().hopMs(),
        in.cal().roundMs(), in.cal().draftCallMs(), in.cal().draftOpenMs(), 1000, seed);
    SimResult r = new Simulator(c, in.target(), in.draft(), t).run();
    System.out.println(json ? r.toJson().toString() : r.summary());
    return 0;
  }

  private AcceptanceTrace traceFor(SimInputs in) throws IOException {
    if (trace != null) {
      return AcceptanceTrace.read(trace);
    }
    if (prompts != null) {
      Path target = model != null ? model : Defaults.targetModel();
      Path d = draft != null ? draft : Defaults.draftModel();
      return TraceCache.traceFor(prompts, target, d, drafting.equals("lookup") ? "lookup" : "model", maxTokens,
          temperature, seed, msg -> System.err.println(msg));
    }
    return SimInputs.defaultTrace(temperature, drafting);
  }

  static int parseSpec(String s) {
    if (s.equals("off")) {
      return 0;
    }
    if (s.equals("auto")) {
      return -1;
    }
    if (s.equals("learned")) {
      return SimConfig.LEARNED;
    }
    try {
      int k = Integer.parseInt(s);
      if (k >= 1) {
        return k;
      }
    } catch (NumberFormatException e) {
      // falls through to the error
    }
    throw new CliException("--spec must be off, a window K >= 1, auto or learned, got " + s);
  }

  static boolean linksTestnet(String s) {
    return switch (s) {
      case "testnet" -> true;
      case "swarm" -> false;
      default -> throw new CliException("--links must be testnet or swarm, got " + s);
    };
  }
}
