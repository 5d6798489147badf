package dev.dsd.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dsd.testnet.sim.AcceptanceTrace;
import dev.dsd.testnet.sim.SimConfig;
import dev.dsd.testnet.sim.SimValidate;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "validate",
    mixinStandardHelpOptions = true,
    description = {
      "Measures a grid on the real multi-process testnet (testnet/sim-validate.sh: up.sh, then each prompt",
      "through the entry under each --spec), simulates the same configurations on the same prompts and",
      "prints measured vs simulated tokens/s with the error. --calibrate first fits the per-hop, per-round",
      "and per-draft-call costs on the latency-0 rows (the rows with latency stay held out)."
    },
    footer = {"", "Examples:", "  dsd sim validate --stages 2,4 --latency 0,20 --specs off,4,auto --prompts 2 --max-tokens 48",
        "  dsd sim validate --measured testnet/results/sim-validate-raw.jsonl --calibrate"})
final class SimValidateCommand implements Callable<Integer> {
  @Option(names = "--measured", paramLabel = "FILE", description = "Use these measured generations instead of running the testnet.")
  Path measured;

  @Option(names = "--stages", defaultValue = "2,4", description = "Stage counts (default: ${DEFAULT-VALUE}).")
  String stages;

  @Option(names = "--latency", defaultValue = "0,20", description = "One-way latencies in ms (default: ${DEFAULT-VALUE}).")
  String latency;

  @Option(names = "--specs", defaultValue = "off,4,auto", description = "Windows (default: ${DEFAULT-VALUE}).")
  String specs;

  @Option(names = "--prompts", defaultValue = "2", description = "Prompts of testnet/results/sim-prompts.txt (default: ${DEFAULT-VALUE}).")
  int prompts;

  @Option(names = "--max-tokens", defaultValue = "48", description = "New tokens per prompt (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "Sampling temperature (default: ${DEFAULT-VALUE}).")
  double temperature;

  @Option(names = "--calibrate", description = "Fit the calibration on the latency-0 rows and write it to --calibration.")
  boolean calibrate;

  @Option(names = "--calibration", paramLabel = "FILE", description = "Calibration to use or write (default: shipped).")
  Path calibration;

  @Option(names = "--json", paramLabel = "FILE", description = "Write the comparison as JSON.")
  Path json;

  @Override
  public Integer call() throws Exception {
    Path raw = measured;
    if (raw == null) {
      raw = Files.createTempFile("dsd-sim-validate", ".jsonl");
      Path script = Defaults.home().resolve("testnet").resolve("sim-validate.sh");
      Process p = new ProcessBuilder(script.toString(), "--stages", stages, "--latency", latency, "--specs", specs,
          "--prompts", Integer.toString(prompts), "--max-tokens", Integer.toString(maxTokens), "--temperature",
          Double.toString(temperature), "--out", raw.toString()).inheritIO().start();
      if (p.waitFor() != 0) {
        throw new CliException("the testnet grid failed (exit " + p.exitValue() + ")");
      }
    }
    List<SimValidate.Row> rows = SimValidate.read(raw);
    Path calFile = calibration != null ? calibration : SimInputs.results().resolve("sim-calibration.json");
    SimInputs in = SimInputs.resolve(null, null, calibrate ? null : calibration);
    SimConfig.Calibration cal = in.cal();
    if (calibrate) {
      cal = SimValidate.calibrate(rows, in.target(), in.draft(), SimValidateCommand::trace);
      Files.writeString(calFile, String.format("{\"format\": \"dsd-sim-calibration/1\", \"hop_ms\": %.2f, \"round_ms\": %.2f,"
          + " \"draft_call_ms\": %.2f, \"draft_open_ms\": %.0f, \"how\": \"dsd sim validate --measured %s --calibrate: least squared log error"
          + " of simulated vs measured tok/s over its latency-0 rows\"}%n", cal.hopMs(), cal.roundMs(), cal.draftCallMs(),
          cal.draftOpenMs(),
          raw.getFileName()));
      System.out.printf("calibration: hop %.2f ms, round %.2f ms, draft call %.2f ms, draft open %.0f ms -> %s%n",
          cal.hopMs(), cal.roundMs(), cal.draftCallMs(), cal.draftOpenMs(), calFile);
    }
    List<SimValidate.Compared> cs = SimValidate.compare(rows, in.target(), in.draft(), SimValidateCommand::trace, cal);
    System.out.print(SimValidate.table(cs));
    if (json != null) {
      Files.writeString(json, new ObjectMapper().writerWithDefaultPrettyPrinter()
          .writeValueAsString(SimValidate.json(cs, cal)) + "\n");
    }
    return 0;
  }

  private static AcceptanceTrace trace(double temperature) {
    try {
      return SimInputs.defaultTrace(temperature, "node");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
