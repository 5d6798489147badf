package dev.dsd.testnet.sim;

import java.util.List;
import java.util.Map;

/** Small synthetic inputs whose outcomes can be worked out by hand. */
final class SimFixtures {
  private SimFixtures() { }

  /** A model of {@code layers} layers whose whole-model call costs {@code callMs + tokenMs * T}. */
  static ComputeProfile profile(int layers, double callMs, double tokenMs) {
    return new ComputeProfile("synthetic", layers, 64, Map.of("f32", new ComputeProfile.Fit(callMs, tokenMs, 0,
        List.of())));
  }

  /** Greedy prompts of {@code promptTokens} whose drafts always match {@code match} tokens ahead. */
  static AcceptanceTrace greedy(int prompts, int promptTokens, int tokens, int match) {
    int[] m = new int[tokens];
    java.util.Arrays.fill(m, match);
    List<AcceptanceTrace.Prompt> ps = new java.util.ArrayList<>();
    for (int i = 0; i < prompts; i++) {
      ps.add(new AcceptanceTrace.Prompt(promptTokens, tokens, m, 0, Map.of()));
    }
    return new AcceptanceTrace("t", "d", "model", 0, tokens, 16, ps);
  }

  /** One stage, one entry, every knob at its simplest. */
  static SimConfig config(int stages, double latencyMs, int spec, String drafting, int requests) {
    return new SimConfig(stages, 1, stages, latencyMs, latencyMs, 0, 0, true, spec, 1, requests, 0, 1, 32, drafting, 1,
        1, 1, 1024, 1, 0, 0, 0, "f32", 0, 0, 0, 0, 1000, 7);
  }
}
