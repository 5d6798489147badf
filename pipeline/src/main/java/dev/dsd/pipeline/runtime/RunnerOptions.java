package dev.dsd.pipeline.runtime;

import dev.dsd.pipeline.model.WeightFormat;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * Settings of a {@link ShardRunner} and its sessions; every limit names its unit.
 *
 * @param intraOpThreads ONNX Runtime threads per call (0 lets ORT choose)
 * @param maxSessions sessions open at once
 * @param kvBudgetBytes KV-cache memory all sessions may reserve together
 * @param idleTimeout a session unused this long is closed by {@link ShardSessions#expireIdle}
 * @param weights the format the shard keeps its linear weights in
 * @param cacheDir where run-format weights files are kept between restarts, keyed by model id, layer
 *     range and format; {@code null} writes them to a temporary file deleted at close
 * @param ortProfile when not null, ONNX Runtime writes a per-op profile of every call to a JSON file
 *     named with this prefix when the session closes (benchmarks only: it slows every call)
 */
public record RunnerOptions(int intraOpThreads, int maxSessions, long kvBudgetBytes, Duration idleTimeout,
    WeightFormat weights, Path cacheDir, Path ortProfile) {
  public static final int DEFAULT_MAX_SESSIONS = 64;
  public static final long DEFAULT_KV_BUDGET_BYTES = 2L << 30;
  public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofMinutes(5);

  public RunnerOptions(int intraOpThreads, int maxSessions, long kvBudgetBytes, Duration idleTimeout) {
    this(intraOpThreads, maxSessions, kvBudgetBytes, idleTimeout, WeightFormat.F32, null, null);
  }

  public RunnerOptions {
    Objects.requireNonNull(weights, "weights");
    if (intraOpThreads < 0 || maxSessions < 1 || kvBudgetBytes < 1 || idleTimeout.isNegative()) {
      throw new IllegalArgumentException("invalid runner options: threads=" + intraOpThreads + " maxSessions="
          + maxSessions + " kvBudgetBytes=" + kvBudgetBytes + " idleTimeout=" + idleTimeout);
    }
  }

  public static RunnerOptions defaults() {
    return new RunnerOptions(0, DEFAULT_MAX_SESSIONS, DEFAULT_KV_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);
  }

  public RunnerOptions withThreads(int threads) {
    return new RunnerOptions(threads, maxSessions, kvBudgetBytes, idleTimeout, weights, cacheDir, ortProfile);
  }

  public RunnerOptions withWeights(WeightFormat format) {
    return new RunnerOptions(intraOpThreads, maxSessions, kvBudgetBytes, idleTimeout, format, cacheDir, ortProfile);
  }

  public RunnerOptions withCacheDir(Path dir) {
    return new RunnerOptions(intraOpThreads, maxSessions, kvBudgetBytes, idleTimeout, weights, dir, ortProfile);
  }

  public RunnerOptions withOrtProfile(Path prefix) {
    return new RunnerOptions(intraOpThreads, maxSessions, kvBudgetBytes, idleTimeout, weights, cacheDir, prefix);
  }
}
