package dev.dsd.testnet.sim;

/**
 * Everything one simulation run depends on. Times are milliseconds, rates per second.
 *
 * @param stages layer ranges the model is split into
 * @param replicas peers serving each range
 * @param layers layers of the simulated model (the profile is scaled to them)
 * @param latencyMs one-way delay of each link; with {@code latencyMaxMs > latencyMs} each peer's is
 *     drawn uniformly from {@code [latencyMs, latencyMaxMs]}
 * @param testnetLinks true: a message crosses only its receiver's link (as behind up.sh's relays);
 *     false: it crosses the sender's and the receiver's (half the peer's latency each)
 * @param spec 0 off, k > 0 fixed window, -1 auto (the node's {@code AdaptiveWindow}), -2 learned (the same
 *     window with the learned {@code AcceptanceHazard})
 * @param concurrency generations the entries run at once (closed loop when {@code arrivalRate} is 0)
 * @param arrivalRate requests per second arriving (0: closed loop); {@code burst} > 1 makes them come in bursts
 * @param drafting "node" (a draft node, as up.sh starts), "entry" (draft model on the entry), "lookup", "none"
 * @param draftNodes draft nodes (requests pick the least loaded)
 * @param batchRows most sessions one stage call carries (1: stages do not batch)
 * @param batchTokens most tokens one stage call carries
 * @param draftBatchRows most sessions one draft node step carries (StarSD batching)
 * @param maxSessions sessions a stage announces it takes (0: no limit); the router weighs load by it
 * @param churnPerHour fraction of target peers that leave per hour (each is replaced after {@code rejoinMs})
 * @param hopMs fixed cost of one message hop (relay, framing, (de)serialization), calibrated on the testnet
 * @param roundMs fixed cost per round at the entry (acceptance, bookkeeping, scheduling)
 * @param draftCallMs fixed cost of one call to a draft node beyond its steps
 * @param draftOpenMs fixed cost of opening a session on a draft node (stream, handshake), beyond its prefill
 * @param failoverMs time to notice a dead stage
 */
public record SimConfig(int stages, int replicas, int layers, double latencyMs, double latencyMaxMs, double jitterMs,
    double bandwidthMbit, boolean testnetLinks, int spec, int concurrency, int requests, double arrivalRate, int burst,
    int maxTokens, String drafting, int draftNodes, int entries, int batchRows, int batchTokens, int draftBatchRows,
    int maxSessions, double churnPerHour, double rejoinMs, String weights, double hopMs, double roundMs,
    double draftCallMs, double draftOpenMs, double failoverMs, long seed) {
  /** {@link #spec} of the learned window controller. */
  public static final int LEARNED = -2;


  public static final int MAX_PEERS = 100_000;
  public static final int MAX_REQUESTS = 10_000_000;

  public SimConfig {
    if (stages < 1 || replicas < 1 || (long) stages * replicas > MAX_PEERS) {
      throw new IllegalArgumentException("stages and replicas must be >= 1 with at most " + MAX_PEERS
          + " peers, got " + stages + " x " + replicas);
    }
    if (layers < stages) {
      throw new IllegalArgumentException("cannot split " + layers + " layers into " + stages + " stages");
    }
    if (latencyMs < 0 || latencyMaxMs < 0 || jitterMs < 0 || bandwidthMbit < 0) {
      throw new IllegalArgumentException("latency, jitter and bandwidth must be >= 0");
    }
    if (spec < LEARNED) {
      throw new IllegalArgumentException("spec must be off (0), K > 0, auto (-1) or learned (-2), got " + spec);
    }
    if (concurrency < 1 || requests < 1 || requests > MAX_REQUESTS || maxTokens < 1) {
      throw new IllegalArgumentException("concurrency, max tokens and requests (<= " + MAX_REQUESTS
          + ") must be >= 1");
    }
    if (!java.util.Set.of("node", "entry", "lookup", "none").contains(drafting)) {
      throw new IllegalArgumentException("drafting must be node, entry, lookup or none, got " + drafting);
    }
    if (batchRows < 1 || batchTokens < 1 || draftBatchRows < 1 || draftNodes < 1 || entries < 1 || burst < 1) {
      throw new IllegalArgumentException("batch caps, draft nodes, entries and burst must be >= 1");
    }
    if (churnPerHour < 0 || arrivalRate < 0) {
      throw new IllegalArgumentException("churn and arrival rate must be >= 0");
    }
  }

  /** The swarm {@code testnet/up.sh --stages N --replicas R --latency MS} starts, as far as the simulator sees it. */
  public static SimConfig testnet(int stages, int replicas, double latencyMs, double jitterMs, double bandwidthMbit,
      int layers, Calibration cal) {
    return new SimConfig(stages, replicas, layers, latencyMs, latencyMs, jitterMs, bandwidthMbit, true, -1, 1, 5, 0, 1,
        128, "node", 1, 1, 8, 256, 8, 0, 0, 0, "f32", cal.hopMs(), cal.roundMs(), cal.draftCallMs(), cal.draftOpenMs(), 1000, 1);
  }

  /** Per-hop and per-round costs outside model compute, measured on the testnet. */
  public record Calibration(double hopMs, double roundMs, double draftCallMs, double draftOpenMs) {
    public static final Calibration NONE = new Calibration(0, 0, 0, 0);
  }

  public int peers() {
    return stages * replicas;
  }

  public SimConfig withSpec(int k) {
    return new SimConfig(stages, replicas, layers, latencyMs, latencyMaxMs, jitterMs, bandwidthMbit, testnetLinks, k,
        concurrency, requests, arrivalRate, burst, maxTokens, drafting, draftNodes, entries, batchRows, batchTokens,
        draftBatchRows, maxSessions, churnPerHour, rejoinMs, weights, hopMs, roundMs, draftCallMs, draftOpenMs, failoverMs, seed);
  }

  public SimConfig withMaxTokens(int n) {
    return new SimConfig(stages, replicas, layers, latencyMs, latencyMaxMs, jitterMs, bandwidthMbit, testnetLinks, spec,
        concurrency, requests, arrivalRate, burst, n, drafting, draftNodes, entries, batchRows, batchTokens,
        draftBatchRows, maxSessions, churnPerHour, rejoinMs, weights, hopMs, roundMs, draftCallMs, draftOpenMs, failoverMs, seed);
  }

  public SimConfig withLoad(int concurrency, int requests, double arrivalRate, int burst) {
    return new SimConfig(stages, replicas, layers, latencyMs, latencyMaxMs, jitterMs, bandwidthMbit, testnetLinks, spec,
        concurrency, requests, arrivalRate, burst, maxTokens, drafting, draftNodes, entries, batchRows, batchTokens,
        draftBatchRows, maxSessions, churnPerHour, rejoinMs, weights, hopMs, roundMs, draftCallMs, draftOpenMs, failoverMs, seed);
  }
}
