package dev.dsd.pipeline.runtime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * One inference session's state on a shard: the KV cache of the hosted layers.
 *
 * <p>The cache is the {@code present_*} outputs of the last call, kept alive (no copy) and fed back
 * as {@code past_*}; {@link #length} says how many positions of them are valid. Truncation (dropping
 * rejected draft tokens) therefore only lowers {@code length}: nothing is recomputed or copied.
 * {@link #maxTokens} caps the session's length; KV memory is charged to the shard's budget as the
 * session fills positions ({@link #chargedTokens}, its high-water mark), not for the cap up front.
 */
public final class ShardSession implements AutoCloseable {
  private final String id;
  private final String owner;
  private final int maxTokens;
  private final long bytesPerToken;
  private volatile int chargedTokens; // changed only under the ShardSessions monitor
  final ReentrantLock lock = new ReentrantLock();
  private OrtSession.Result lastResult; // owns the present_* tensors
  OnnxTensor[] pastKeys; // per hosted layer, [kvH, >= length, hd]
  OnnxTensor[] pastValues;
  private int length;
  private volatile long lastUsedNanos = System.nanoTime();
  private volatile boolean closed;
  private final Consumer<ShardSession> onClose;

  ShardSession(String id, String owner, int maxTokens, long bytesPerToken, Consumer<ShardSession> onClose) {
    this.id = id;
    this.owner = owner;
    this.maxTokens = maxTokens;
    this.bytesPerToken = bytesPerToken;
    this.onClose = onClose;
  }

  public String id() {
    return id;
  }

  /** Who opened it (a peer id, or {@code local}); limits are counted per owner by callers. */
  public String owner() {
    return owner;
  }

  /** Tokens whose keys and values are cached. */
  public int length() {
    return length;
  }

  /** The most tokens this session may hold. */
  public int maxTokens() {
    return maxTokens;
  }

  /** KV bytes charged to the shard's budget: {@link #chargedTokens} positions' worth. */
  public long reservedBytes() {
    return chargedTokens * bytesPerToken;
  }

  /** The most positions this session has held: what its budget charge covers. */
  public int chargedTokens() {
    return chargedTokens;
  }

  void charged(int tokens) {
    chargedTokens = tokens;
  }

  long lastUsedNanos() {
    return lastUsedNanos;
  }

  void touch() {
    lastUsedNanos = System.nanoTime();
  }

  /** Drops cached positions {@code >= n}; the next call continues at position {@code n}. */
  public void truncate(int n) {
    lock.lock();
    try {
      checkOpen();
      if (n < 0 || n > length) {
        throw new IllegalArgumentException("session " + id + ": cannot truncate to " + n + ", cache holds " + length);
      }
      length = n;
      touch();
    } finally {
      lock.unlock();
    }
  }

  void checkOpen() {
    if (closed) {
      throw new IllegalStateException("session " + id + " is closed");
    }
  }

  /** Adopts a call's outputs as the new cache, releasing the previous one. */
  void replaceCache(OrtSession.Result result, OnnxTensor[] keys, OnnxTensor[] values, int newLength) {
    OrtSession.Result old = lastResult;
    lastResult = result;
    pastKeys = keys;
    pastValues = values;
    length = newLength;
    if (old != null) {
      old.close();
    }
  }

  public boolean isClosed() {
    return closed;
  }

  @Override
  public void close() {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      if (lastResult != null) {
        lastResult.close();
        lastResult = null;
      }
      pastKeys = null;
      pastValues = null;
    } finally {
      lock.unlock();
    }
    onClose.accept(this);
  }
}
