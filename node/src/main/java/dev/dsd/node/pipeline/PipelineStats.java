package dev.dsd.node.pipeline;

import java.util.concurrent.atomic.LongAdder;

/** Counters of this node's pipeline work, read by logs, {@code /metrics} and benchmarks. */
public final class PipelineStats {
  public final LongAdder rounds = new LongAdder();
  public final LongAdder bytesSent = new LongAdder();
  public final LongAdder computeNanos = new LongAdder();
  public final LongAdder rejectedMessages = new LongAdder();
}
