package dev.dsd.node.pipeline;

import dev.dsd.node.metrics.Histogram;
import java.util.concurrent.atomic.LongAdder;

/** Counters of this node's pipeline work, read by logs, {@code /metrics} and benchmarks. */
public final class PipelineStats {
  public final LongAdder rounds = new LongAdder();
  public final LongAdder bytesSent = new LongAdder();
  public final LongAdder computeNanos = new LongAdder();
  public final LongAdder rejectedMessages = new LongAdder();
  /** Pipelined rounds a cancel dropped here: before their call, or (compute wasted) after it. */
  public final LongAdder cancelledRounds = new LongAdder();
  /** ONNX Runtime calls the stages made; each carries one or more sessions' rounds. */
  public final LongAdder batchCalls = new LongAdder();
  /** Sessions' rounds per stage call. */
  public final Histogram batchRows = new Histogram(1, 2, 4, 8, 16, 32, 64);
}
