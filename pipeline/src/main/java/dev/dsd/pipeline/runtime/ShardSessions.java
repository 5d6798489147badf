package dev.dsd.pipeline.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The open sessions of one shard, with the limits that keep a node from running out of memory: a
 * maximum count and a KV-memory budget. A session is charged for the positions it actually fills
 * (its high-water mark), as each call grows it, not for its maximum up front: a chat that asks
 * for the whole context but uses a tenth of it takes a tenth of the budget. A call that would grow
 * a session beyond what is left is refused before it runs, with what it asked and what is free.
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
    if (options.kvBudgetBytes() - reserved < bytesPerToken) {
      throw new RuntimeLimitException("KV memory budget exhausted: session " + id + " cannot hold a single token ("
          + bytesPerToken + " bytes); " + (options.kvBudgetBytes() - reserved) + " of " + options.kvBudgetBytes()
          + " bytes are free, " + sessions.size() + " sessions hold the rest");
    }
    ShardSession s = new ShardSession(id, owner, maxTokens, bytesPerToken, this::release);
    sessions.put(id, s);
    log.debug("session open id={} owner={} maxTokens={}", id, owner, maxTokens);
    return s;
  }

  /**
   * Charges {@code s} for holding {@code tokens} positions (nothing if it has held as many before).
   *
   * @throws RuntimeLimitException when the budget has less left than the growth needs
   */
  synchronized void charge(ShardSession s, int tokens) {
    int had = s.chargedTokens();
    if (tokens <= had || sessions.get(s.id()) != s) {
      return;
    }
    long more = (long) (tokens - had) * bytesPerToken;
    long free = options.kvBudgetBytes() - reserved;
    if (more > free) {
      throw new RuntimeLimitException("KV memory budget exhausted: session " + s.id() + " needs " + more
          + " more bytes to grow from " + had + " to " + tokens + " positions (" + bytesPerToken + " bytes each); "
          + free + " of " + options.kvBudgetBytes() + " bytes are free, " + sessions.size() + " sessions hold the rest");
    }
    reserved += more;
    s.charged(tokens);
  }

  private synchronized void release(ShardSession s) {
    if (sessions.remove(s.id(), s)) {
      reserved -= s.reservedBytes();
      log.debug("session closed id={} freedBytes={}", s.id(), s.reservedBytes());
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
