package dev.dsd.pipeline.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The open sessions of one shard, with the limits that keep a node from running out of memory: a
 * maximum count and a KV-memory budget that every session reserves in full when it opens.
 */
public final class ShardSessions {
  private static final Logger log = LoggerFactory.getLogger(ShardSessions.class);

  private final RunnerOptions options;
  private final long bytesPerToken;
  private final Map<String, ShardSession> sessions = new ConcurrentHashMap<>();
  private long reserved;

  ShardSessions(RunnerOptions options, long bytesPerToken) {
    this.options = options;
    this.bytesPerToken = bytesPerToken;
  }

  /** KV bytes one token costs on this shard (keys and values of every hosted layer, F32). */
  public long bytesPerToken() {
    return bytesPerToken;
  }

  synchronized ShardSession open(String id, String owner, int maxTokens) {
    if (sessions.containsKey(id)) {
      throw new IllegalArgumentException("session " + id + " is already open");
    }
    if (sessions.size() >= options.maxSessions()) {
      throw new RuntimeLimitException("too many sessions: " + sessions.size() + " open, limit " + options.maxSessions());
    }
    long bytes = maxTokens * bytesPerToken;
    if (reserved + bytes > options.kvBudgetBytes()) {
      throw new RuntimeLimitException("KV memory budget exceeded: session " + id + " needs " + bytes + " bytes for "
          + maxTokens + " tokens, " + (options.kvBudgetBytes() - reserved) + " of " + options.kvBudgetBytes()
          + " bytes are free");
    }
    reserved += bytes;
    ShardSession s = new ShardSession(id, owner, maxTokens, bytes, () -> release(id, bytes));
    sessions.put(id, s);
    log.debug("session open id={} owner={} maxTokens={} reservedBytes={}", id, owner, maxTokens, bytes);
    return s;
  }

  private synchronized void release(String id, long bytes) {
    if (sessions.remove(id) != null) {
      reserved -= bytes;
      log.debug("session closed id={} freedBytes={}", id, bytes);
    }
  }

  public java.time.Duration idleTimeout() {
    return options.idleTimeout();
  }

  public long kvBudgetBytes() {
    return options.kvBudgetBytes();
  }

  public int maxSessions() {
    return options.maxSessions();
  }

  public ShardSession get(String id) {
    return sessions.get(id);
  }

  public int size() {
    return sessions.size();
  }

  public synchronized long reservedBytes() {
    return reserved;
  }

  /** Closes sessions idle longer than the configured timeout; returns their ids. */
  public List<String> expireIdle() {
    long now = System.nanoTime();
    List<String> expired = new ArrayList<>();
    for (ShardSession s : List.copyOf(sessions.values())) {
      if (now - s.lastUsedNanos() > options.idleTimeout().toNanos() && s.lock.tryLock()) {
        try {
          expired.add(s.id());
        } finally {
          s.lock.unlock();
        }
        s.close();
        log.info("session expired id={} owner={} idle>{}s", s.id(), s.owner(), options.idleTimeout().toSeconds());
      }
    }
    return expired;
  }

  void closeAll() {
    List.copyOf(sessions.values()).forEach(ShardSession::close);
  }
}
