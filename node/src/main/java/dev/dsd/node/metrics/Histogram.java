package dev.dsd.node.metrics;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.DoubleAdder;

/**
 * A Prometheus histogram with fixed upper bounds: counts of samples {@code <= bound} are kept per
 * bucket (rendered cumulatively), plus the sum and count. Thread-safe and lock-free.
 */
public final class Histogram {
  private final double[] bounds;
  private final AtomicLongArray counts; // one per bound, plus +Inf
  private final DoubleAdder sum = new DoubleAdder();

  public Histogram(double... bounds) {
    for (int i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) {
        throw new IllegalArgumentException("histogram bounds must increase: " + Arrays.toString(bounds));
      }
    }
    this.bounds = bounds.clone();
    this.counts = new AtomicLongArray(bounds.length + 1);
  }

  public void record(double value) {
    int i = 0;
    while (i < bounds.length && value > bounds[i]) {
      i++;
    }
    counts.incrementAndGet(i);
    sum.add(value);
  }

  public long count() {
    long n = 0;
    for (int i = 0; i < counts.length(); i++) {
      n += counts.get(i);
    }
    return n;
  }

  public double sum() {
    return sum.sum();
  }

  /** Writes the family's bucket, sum and count samples (the family header is the caller's). */
  public void render(PrometheusText p, String name, String... labels) {
    long cumulative = 0;
    for (int i = 0; i <= bounds.length; i++) {
      cumulative += counts.get(i);
      String le = i < bounds.length ? PrometheusText.format(bounds[i]) : "+Inf";
      String[] l = Arrays.copyOf(labels, labels.length + 2);
      l[labels.length] = "le";
      l[labels.length + 1] = le;
      p.sample(name + "_bucket", cumulative, l);
    }
    p.sample(name + "_sum", sum(), labels);
    p.sample(name + "_count", count(), labels);
  }
}
