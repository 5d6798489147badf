package dev.dsd.node.metrics;

import java.util.Arrays;

/**
 * Count and sum of latencies since start, plus the median of the most recent {@code window}
 * samples. The median is over a window rather than all time so that it follows the network as it
 * changes (a peer that got slow shows up within {@code window} rounds). Thread-safe.
 */
public final class LatencySummary {
  private final double[] recent; // ring buffer of the last samples, in seconds
  private int next;
  private int filled;
  private long count;
  private double sum;

  public LatencySummary(int window) {
    if (window < 1) {
      throw new IllegalArgumentException("latency window must hold at least 1 sample, got " + window);
    }
    recent = new double[window];
  }

  public synchronized void record(double seconds) {
    if (!(seconds >= 0) || Double.isInfinite(seconds)) {
      throw new IllegalArgumentException("latency must be a finite number of seconds >= 0, got " + seconds);
    }
    recent[next] = seconds;
    next = (next + 1) % recent.length;
    filled = Math.min(filled + 1, recent.length);
    count++;
    sum += seconds;
  }

  public synchronized long count() {
    return count;
  }

  public synchronized double sum() {
    return sum;
  }

  /** Median of the recent window; NaN before the first sample (Prometheus' convention for "no data"). */
  public synchronized double median() {
    if (filled == 0) {
      return Double.NaN;
    }
    double[] s = Arrays.copyOf(recent, filled);
    Arrays.sort(s);
    int mid = filled / 2;
    return filled % 2 == 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  }
}
