package dev.dsd.pipeline.runtime;

/**
 * One session's KV cache on a {@link StageBatchRunner}: per hosted layer, keys and values laid out
 * [kvH, maxTokens, hd] in arrays reserved in full when the session opens (the budget's ticket is
 * the {@link ShardSession} it holds). Only {@link #length} positions are valid, so dropping
 * rejected drafts is just lowering it; a call appends only its new positions.
 */
public final class StageKv implements AutoCloseable {
  private final ShardSession ticket;
  private final Object lock;
  final float[][] keys; // [layer][kvH * maxTokens * hd]
  final float[][] values;
  volatile int length; // written under the runner's lock, read without it (a stage checks rounds while a call runs)
  private volatile boolean closed;

  StageKv(ShardSession ticket, int layers, int kvDim, Object lock) {
    this.ticket = ticket;
    this.lock = lock;
    this.keys = new float[layers][ticket.maxTokens() * kvDim];
    this.values = new float[layers][ticket.maxTokens() * kvDim];
  }

  public String id() {
    return ticket.id();
  }

  public String owner() {
    return ticket.owner();
  }

  public int maxTokens() {
    return ticket.maxTokens();
  }

  /** Positions whose keys and values are cached. */
  public int length() {
    return length;
  }

  /** Drops cached positions {@code >= n}; the next call continues at position {@code n}. */
  public void truncate(int n) {
    synchronized (lock) {
      checkOpen();
      if (n < 0 || n > length) {
        throw new IllegalArgumentException("session " + id() + ": cannot truncate to " + n + ", cache holds " + length);
      }
      length = n;
      ticket.touch();
    }
  }

  void checkOpen() {
    if (closed) {
      throw new IllegalStateException("session " + id() + " is closed");
    }
  }

  public boolean isClosed() {
    return closed;
  }

  /** Frees the reservation; waits for a call in progress that uses this cache. */
  @Override
  public void close() {
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
    }
    ticket.close();
  }
}
