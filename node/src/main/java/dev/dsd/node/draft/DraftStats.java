package dev.dsd.node.draft;

import java.util.concurrent.atomic.AtomicLong;

/**
 * How well the draft node batches: passes run, rows (session steps) they carried, and the share
 * of wall time the batcher spent computing. Rows per pass above 1 is the point of batching.
 */
public final class DraftStats {
  private final long startNanos = System.nanoTime();
  private final AtomicLong passes = new AtomicLong();
  private final AtomicLong rows = new AtomicLong();
  private final AtomicLong tokens = new AtomicLong();
  private final AtomicLong busyNanos = new AtomicLong();
  private final AtomicLong maxRows = new AtomicLong();
  private final AtomicLong proposals = new AtomicLong();
  private final AtomicLong errors = new AtomicLong();
  private final AtomicLong internalFailures = new AtomicLong();

  void pass(int rowCount, int tokenCount, long nanos) {
    passes.incrementAndGet();
    rows.addAndGet(rowCount);
    tokens.addAndGet(tokenCount);
    busyNanos.addAndGet(nanos);
    maxRows.accumulateAndGet(rowCount, Math::max);
  }

  void proposal() {
    proposals.incrementAndGet();
  }

  void error() {
    errors.incrementAndGet();
  }

  /** A batcher task or pass threw instead of answering: always a bug. */
  void internalFailure() {
    internalFailures.incrementAndGet();
  }

  public long internalFailures() {
    return internalFailures.get();
  }

  public long passes() {
    return passes.get();
  }

  public long rows() {
    return rows.get();
  }

  /** Positions computed, padding excluded. */
  public long tokens() {
    return tokens.get();
  }

  public long maxRows() {
    return maxRows.get();
  }

  public long proposals() {
    return proposals.get();
  }

  public long errors() {
    return errors.get();
  }

  public double rowsPerPass() {
    long p = passes.get();
    return p == 0 ? 0 : (double) rows.get() / p;
  }

  /** Share of the time since the server started that a pass was running. */
  public double busyFraction() {
    long wall = System.nanoTime() - startNanos;
    return wall <= 0 ? 0 : Math.min(1, (double) busyNanos.get() / wall);
  }

  public long busyNanos() {
    return busyNanos.get();
  }

  @Override
  public String toString() {
    return String.format("passes=%d rowsPerPass=%.2f maxRows=%d tokens=%d busy=%.1f%% proposals=%d errors=%d",
        passes(), rowsPerPass(), maxRows(), tokens(), 100 * busyFraction(), proposals(), errors());
  }
}
