package dev.dsd.node.stage;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.function.Consumer;

/**
 * Continuous batching for one stage: rounds from different sessions wait here while the stage is
 * busy, and when it becomes free everything that fits goes into the next call, oldest first.
 *
 * <p>There is no timer: a round that arrives at an idle stage starts at once, alone, so a lone
 * session sees no added latency; rounds that arrive during a call ride the next one. A call takes
 * at most {@link Limits#maxRows} rows and {@link Limits#maxTokens} padded positions (rows times the
 * longest row); the oldest round always goes, even a prompt longer than the token cap, and a round
 * that does not fit is left for the next call ahead of anything newer, so nothing starves. A session
 * is in a call at most once (its next round needs this one's cache).
 *
 * @param <J> a round waiting to run
 */
final class StageScheduler<J extends StageScheduler.Job> {
  /** What a waiting round must tell the scheduler. */
  interface Job {
    /** The session it belongs to (identity), so a call holds one round per session. */
    Object session();

    /** New positions it runs. */
    int positions();

    /** False once its session ended while it waited: dropped, not run. */
    boolean live();
  }

  /**
   * Caps of one call.
   *
   * @param maxRows sessions per call
   * @param maxTokens rows times the longest row's positions (what the padded call computes)
   */
  record Limits(int maxRows, int maxTokens) {
    /** 32 rows of a typical verification round (k+1 = 5..9 positions) fit the token cap. */
    static final int DEFAULT_MAX_ROWS = 32;
    static final int DEFAULT_MAX_TOKENS = 320;

    Limits {
      if (maxRows < 1 || maxTokens < 1) {
        throw new IllegalArgumentException("batch limits must be >= 1: rows " + maxRows + ", tokens " + maxTokens);
      }
    }

    static Limits defaults() {
      return new Limits(DEFAULT_MAX_ROWS, DEFAULT_MAX_TOKENS);
    }
  }

  private final Limits limits;
  private final Executor pool;
  private final Consumer<List<J>> call;
  private final LinkedList<J> waiting = new LinkedList<>();
  private boolean running;

  /** {@code call} runs one batch on a pool thread; it must not throw (each round answers for itself). */
  StageScheduler(Limits limits, Executor pool, Consumer<List<J>> call) {
    this.limits = limits;
    this.pool = pool;
    this.call = call;
  }

  Limits limits() {
    return limits;
  }

  /** Rounds waiting for the stage now. */
  synchronized int waiting() {
    return waiting.size();
  }

  void submit(J job) {
    synchronized (this) {
      waiting.add(job);
      if (running) {
        return;
      }
      running = true;
    }
    pool.execute(this::drain);
  }

  private void drain() {
    while (true) {
      List<J> batch = take();
      if (batch.isEmpty()) {
        return;
      }
      call.accept(batch);
    }
  }

  /** Removes the waiting rounds {@code which} picks (a cancel overtaking them); returns them. */
  synchronized List<J> drop(java.util.function.Predicate<J> which) {
    List<J> out = new ArrayList<>();
    for (Iterator<J> it = waiting.iterator(); it.hasNext(); ) {
      J j = it.next();
      if (which.test(j)) {
        it.remove();
        out.add(j);
      }
    }
    return out;
  }

  /** The next call's rounds; empty (and the stage marked idle) when nothing waits. */
  synchronized List<J> take() {
    List<J> batch = new ArrayList<>();
    Map<Object, Boolean> sessions = new IdentityHashMap<>();
    int longest = 0;
    for (Iterator<J> it = waiting.iterator(); it.hasNext() && batch.size() < limits.maxRows(); ) {
      J j = it.next();
      if (!j.live()) {
        it.remove();
        continue;
      }
      if (sessions.containsKey(j.session())) {
        continue;
      }
      int longer = Math.max(longest, j.positions());
      if (!batch.isEmpty() && (long) longer * (batch.size() + 1) > limits.maxTokens()) {
        sessions.put(j.session(), Boolean.FALSE); // its later rounds must not overtake it
        continue;
      }
      it.remove();
      batch.add(j);
      sessions.put(j.session(), Boolean.TRUE);
      longest = longer;
    }
    if (batch.isEmpty()) {
      running = false;
    }
    return batch;
  }
}
