package dev.dsd.testnet.sim;

import java.util.Arrays;

/** Per-request figures as they finish, summed into a {@link SimResult} at the end. */
final class Metrics {
  private final double[] latencies;
  private final int stages;
  private int n;
  private long tokens;
  private double seconds;
  private long rounds;
  private long drafted;
  private long accepted;
  private long failovers;
  long leaves;
  private double lastFinish;

  Metrics(int requests, int stages) {
    this.latencies = new double[requests];
    this.stages = stages;
  }

  void record(SimSession s, double now) {
    latencies[n++] = now - s.arrival;
    lastFinish = Math.max(lastFinish, now);
    tokens += s.produced;
    seconds += (now - s.started) / 1000;
    rounds += s.rounds;
    drafted += s.drafted;
    accepted += s.accepted;
    failovers += s.failovers;
  }

  SimResult result(Simulator sim, double wallSeconds, double cpuSeconds) {
    // the last request's end, not the last event's: a churn event may be pending far beyond it
    double span = lastFinish;
    double[] busy = new double[stages];
    long calls = 0;
    double rows = 0;
    for (SimPeer p : sim.stagePeers) {
      int s = stageOf(sim, p);
      busy[s] += p.server.busyMs();
      calls += p.server.calls();
      rows += p.server.meanRows() * p.server.calls();
    }
    for (int s = 0; s < stages; s++) {
      busy[s] = span == 0 ? 0 : busy[s] / (sim.c.replicas() * span);
    }
    double[] sorted = Arrays.copyOf(latencies, n);
    Arrays.sort(sorted);
    return new SimResult(n, tokens, seconds == 0 ? 0 : tokens / seconds, span == 0 ? 0 : tokens / (span / 1000),
        SimResult.percentile(sorted, 0.5), SimResult.percentile(sorted, 0.99), rounds, drafted, accepted, busy,
        calls == 0 ? 0 : rows / calls, failovers, leaves, span, sim.events.executed(), wallSeconds, cpuSeconds);
  }

  static int stageOf(Simulator sim, SimPeer p) {
    for (int s = 0; s < sim.c.stages(); s++) {
      if (sim.c.layers() * s / sim.c.stages() == p.from) {
        return s;
      }
    }
    throw new IllegalStateException(p + " serves no stage's layers");
  }
}
