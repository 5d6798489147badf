package dev.dsd.cli;

import dev.dsd.testnet.sim.AcceptanceTrace;
import dev.dsd.testnet.sim.Calibration;
import dev.dsd.testnet.sim.ComputeProfile;
import dev.dsd.testnet.sim.SimConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The simulator's measured inputs: profiles, calibration and traces, shipped in testnet/results unless given. */
record SimInputs(ComputeProfile target, ComputeProfile draft, SimConfig.Calibration cal) {

  static Path results() {
    return Defaults.home().resolve("testnet").resolve("results");
  }

  static SimInputs resolve(Path profile, Path draftProfile, Path calibration) throws IOException {
    ComputeProfile t = ComputeProfile.read(shipped(profile, "profile-pycoder-target.json"));
    ComputeProfile d = ComputeProfile.read(shipped(draftProfile, "profile-pycoder-draft.json"));
    SimConfig.Calibration c = Calibration.read(shipped(calibration, "sim-calibration.json"));
    return new SimInputs(t, d, c);
  }

  private static Path shipped(Path given, String name) {
    Path p = given != null ? given : results().resolve(name);
    if (!Files.isRegularFile(p)) {
      throw new CliException(p + " is missing" + (given != null ? "" : " (the shipped file; run from a dsd checkout)"));
    }
    return p;
  }

  /** The shipped trace of the bundled pair for this temperature and drafter. */
  static AcceptanceTrace defaultTrace(double temperature, String drafting) throws IOException {
    String kind = drafting.equals("lookup") ? "lookup" : "model";
    String temp = temperature == 0 ? "greedy" : "t" + temperature;
    Path p = results().resolve("trace-pycoder-" + kind + "-" + temp + ".json");
    if (!Files.isRegularFile(p)) {
      throw new CliException("no shipped trace " + p.getFileName() + " for temperature " + temperature + " and "
          + kind + " drafting: record one with --prompts FILE");
    }
    return AcceptanceTrace.read(p);
  }
}
