package dev.dsd.pipeline.runtime;

/**
 * One sequence's KV cache in a {@link BatchRunner}: per layer, keys and values laid out
 * [kvH, maxTokens, hd] in plain arrays that the runner gathers into a batch before each pass and
 * appends the new positions to after it. Only {@link #length} positions are valid, so dropping
 * rejected drafts is just lowering it. The whole capacity is reserved when the session opens.
 */
public final class BatchSession implements AutoCloseable {
  private final String id;
  private final int maxTokens;
  private final long reservedBytes;
  private final Object lock;
  private final Runnable onClose;
  final float[][] keys;
  final float[][] values;
  int length;
  private boolean closed;

  BatchSession(String id, int maxTokens, int layers, int kvDim, long reservedBytes, Object lock, Runnable onClose) {
    this.id = id;
    this.maxTokens = maxTokens;
    this.reservedBytes = reservedBytes;
    this.lock = lock;
    this.onClose = onClose;
    this.keys = new float[layers][maxTokens * kvDim];
    this.values = new float[layers][maxTokens * kvDim];
  }

  public String id() {
    return id;
  }

  public int maxTokens() {
    return maxTokens;
  }

  public long reservedBytes() {
    return reservedBytes;
  }

  /** Positions whose keys and values are cached. */
  public int length() {
    synchronized (lock) {
      return length;
    }
  }

  /** Drops cached positions {@code >= n}; the next pass continues this row at position {@code n}. */
  public void truncate(int n) {
    synchronized (lock) {
      checkOpen();
      if (n < 0 || n > length) {
        throw new IllegalArgumentException("session " + id + ": cannot truncate to " + n + ", cache holds " + length);
      }
      length = n;
    }
  }

  void checkOpen() {
    if (closed) {
      throw new IllegalStateException("session " + id + " is closed");
    }
  }

  public boolean isClosed() {
    synchronized (lock) {
      return closed;
    }
  }

  @Override
  public void close() {
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
    }
    onClose.run();
  }
}
