package dev.dsd.cli;

import dev.dsd.testnet.sim.AcceptanceTrace;
import dev.dsd.testnet.sim.SimConfig;
import dev.dsd.testnet.sim.SimResult;
import dev.dsd.testnet.sim.Simulator;
import dev.dsd.testnet.sim.WindowTrainer;
import dev.dsd.verification.window.AcceptanceHazard;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "train-window",
    mixinStandardHelpOptions = true,
    description = {
      "Trains the learned window controller (--spec learned): a logistic model of how far a round's drafts",
      "survive, fitted on acceptance traces of training prompts (record one with `dsd sim --prompts FILE",
      "--save-trace FILE`). It then simulates a grid (stages x latency x concurrency) on the held-out traces",
      "with the analytic controller (auto) and the new model, and prints tokens/s of each and their ratio."
    },
    footer = {"", "Example:", "  dsd sim train-window --trace testnet/results/trace-window-train-greedy.json \\",
        "    --held-out testnet/results/trace-pycoder-model-greedy.json --out acceptance-hazard.txt"})
final class SimTrainWindowCommand implements Callable<Integer> {
  @Option(names = "--trace", required = true, paramLabel = "FILE", description = "Training traces (repeatable).")
  List<Path> traces;

  @Option(names = "--held-out", required = true, paramLabel = "FILE",
      description = "Traces of prompts never trained on, for the log loss and the simulated grid (repeatable).")
  List<Path> heldOut;

  @Option(names = "--out", paramLabel = "FILE", description = "Where to write the model (default: print it).")
  Path out;

  @Option(names = "--model", paramLabel = "FILE", description = "Evaluate this model instead of training one.")
  Path model;

  @Option(names = "--stages", split = ",", defaultValue = "2,4", description = "Grid stages (default: ${DEFAULT-VALUE}).")
  List<Integer> stages;

  @Option(names = "--latency", split = ",", defaultValue = "0,5,20,50",
      description = "Grid one-way latencies in ms (default: ${DEFAULT-VALUE}).")
  List<Double> latencies;

  @Option(names = "--concurrency", split = ",", defaultValue = "1,8",
      description = "Grid generations at once (default: ${DEFAULT-VALUE}).")
  List<Integer> concurrency;

  @Option(names = "--seeds", defaultValue = "3", description = "Simulation seeds per grid point (default: ${DEFAULT-VALUE}).")
  int seeds;

  @Option(names = "--seed", defaultValue = "1", description = "Seed of the training replay (default: ${DEFAULT-VALUE}).")
  long seed;

  @Override
  public Integer call() throws IOException {
    List<AcceptanceTrace> train = read(traces);
    List<AcceptanceTrace> held = read(heldOut);
    AcceptanceHazard hazard;
    if (model != null) {
      hazard = AcceptanceHazard.parse(Files.readString(model));
    } else {
      Map<String, String> prov = new LinkedHashMap<>();
      prov.put("trained_by", "dsd sim train-window --trace " + names(traces) + " --held-out " + names(heldOut)
          + " --seed " + seed);
      WindowTrainer.Result r = WindowTrainer.train(train, held, Simulator.MAX_AUTO_WINDOW, seed, prov);
      prov.put("examples", r.trainExamples() + " training, " + r.heldOutExamples() + " held-out");
      prov.put("held_out_log_loss", String.format(Locale.ROOT, "%.4f (geometric rate: %.4f)", r.heldOutLogLoss(),
          r.geometricLogLoss()));
      hazard = new AcceptanceHazard(r.model().weights(), prov);
      System.out.printf(Locale.ROOT, "examples %d training, %d held-out; held-out log loss %.4f, geometric %.4f%n",
          r.trainExamples(), r.heldOutExamples(), r.heldOutLogLoss(), r.geometricLogLoss());
      if (out != null) {
        Files.writeString(out, hazard.format());
        System.out.println("wrote " + out.toAbsolutePath());
      } else {
        System.out.print(hazard.format());
      }
    }
    SimInputs in = SimInputs.resolve(null, null, null);
    System.out.println("trace         stages latency conc   auto tok/s  learned tok/s  ratio");
    List<Double> ratios = new ArrayList<>();
    for (int h = 0; h < held.size(); h++) {
      AcceptanceTrace t = held.get(h);
      for (int st : stages) {
        for (double lat : latencies) {
          for (int conc : concurrency) {
            double auto = 0;
            double learned = 0;
            for (int s = 0; s < seeds; s++) {
              auto += simulate(in, t, st, lat, conc, -1, s + 1, null);
              learned += simulate(in, t, st, lat, conc, SimConfig.LEARNED, s + 1, hazard);
            }
            double ratio = learned / auto;
            ratios.add(ratio);
            System.out.printf(Locale.ROOT, "%-13s %6d %7.0f %4d %12.1f %14.1f %6.3f%n", heldOut.get(h).getFileName()
                .toString().replace("trace-", "").replace(".json", ""), st, lat, conc, auto / seeds, learned / seeds, ratio);
          }
        }
      }
    }
    double geo = Math.exp(ratios.stream().mapToDouble(Math::log).average().orElse(0));
    double worst = ratios.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
    System.out.printf(Locale.ROOT, "learned / auto over %d held-out grid points: geometric mean %.3f, worst %.3f%n",
        ratios.size(), geo, worst);
    return 0;
  }

  private static double simulate(SimInputs in, AcceptanceTrace t, int stages, double latency, int conc, int spec,
      long seed, AcceptanceHazard hazard) {
    int requests = Math.max(t.prompts().size(), conc * 2);
    SimConfig c = new SimConfig(stages, 1, in.target().layers(), latency, latency, 0, 0, true, spec, conc, requests, 0,
        1, t.maxTokens(), "node", 1, 1, 8, 256, 8, 0, 0, 60_000, "f32", in.cal().hopMs(), in.cal().roundMs(),
        in.cal().draftCallMs(), in.cal().draftOpenMs(), 1000, seed);
    SimResult r = new Simulator(c, in.target(), in.draft(), t, hazard).run();
    return conc == 1 ? r.tokensPerSecond() : r.throughput(); // with many at once, what the swarm delivers
  }

  private static List<AcceptanceTrace> read(List<Path> files) throws IOException {
    List<AcceptanceTrace> out = new ArrayList<>();
    for (Path p : files) {
      out.add(AcceptanceTrace.read(p));
    }
    return out;
  }

  private static String names(List<Path> files) {
    return String.join(" ", files.stream().map(p -> p.getFileName().toString()).toList());
  }
}
