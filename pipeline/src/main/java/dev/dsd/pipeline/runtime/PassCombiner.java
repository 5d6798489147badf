package dev.dsd.pipeline.runtime;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lets threads that each drive their own {@link BatchSession} (an entry's generations, each drafting
 * with the local draft model) share the passes of one {@link BatchRunner}, with no thread of its own.
 *
 * <p>A thread that asks for a step while no pass runs runs it at once, alone, on its own thread: a
 * lone session waits for nothing and changes threads never. Threads that ask while a pass runs
 * wait; when the pass ends its runner hands the next pass to the oldest of them, which takes every
 * waiting step that fits (oldest first, at most {@link #maxRows} rows; short rows together, a row of
 * more than {@link #SHORT_ROW_TOKENS} new tokens, a prompt, alone so that decode steps are not padded
 * to it) and runs them as rows of one call. The oldest waiting step always goes, so nothing starves.
 * The combiner is the draft node's {@code DraftBatcher} rule without its thread: there, sessions are
 * driven by messages; here, by the threads that wait for the result anyway.
 *
 * <p>A multi-row pass that fails is retried row by row, so one session's bad step (a limit, a closed
 * session) fails only that session.
 */
public final class PassCombiner {
  private static final Logger log = LoggerFactory.getLogger(PassCombiner.class);
  /** A log line of batching figures every this many passes. */
  static final int LOG_EVERY_PASSES = 5000;
  /** Rows with more new tokens than this run alone (as the draft node's batcher does). */
  public static final int SHORT_ROW_TOKENS = 4;
  public static final int DEFAULT_MAX_ROWS = 32;

  private final BatchRunner runner;
  private final int maxRows;
  private final ReentrantLock lock = new ReentrantLock();
  private final ArrayDeque<Step> waiting = new ArrayDeque<>(); // guarded by lock
  private boolean running; // guarded by lock: a pass runs or its lead is handed over
  private final LongAdder passes = new LongAdder();
  private final LongAdder rows = new LongAdder();
  private final LongAdder passNanos = new LongAdder();

  static final class Step {
    final BatchRunner.Row row;
    float[] logits;
    RuntimeException error;
    boolean done;
    boolean lead;
    Condition wake; // only for a step that waits

    Step(BatchRunner.Row row) {
      this.row = row;
    }
  }

  public PassCombiner(BatchRunner runner, int maxRows) {
    if (maxRows < 1) {
      throw new IllegalArgumentException("a pass needs at least one row, max rows " + maxRows);
    }
    this.runner = runner;
    this.maxRows = maxRows;
  }

  public BatchRunner runner() {
    return runner;
  }

  /** Passes run so far. */
  public long passes() {
    return passes.sum();
  }

  /** Rows those passes carried (rows / passes is the mean batch). */
  public long rows() {
    return rows.sum();
  }

  /**
   * Runs {@code tokens} at {@code session}'s next positions, in a pass shared with whatever other
   * sessions' steps wait, and returns their logits ({@code tokens.length * vocab}). One thread per
   * session at a time (a session is in a pass at most once).
   */
  public float[] forward(BatchSession session, int[] tokens) {
    Step me = new Step(new BatchRunner.Row(session, tokens));
    List<Step> pass = List.of();
    boolean interrupted = false;
    lock.lock();
    try {
      waiting.add(me);
      if (running) {
        me.wake = lock.newCondition();
        // passes take milliseconds: waiting is not interruptible, so a lead handed over is never dropped
        while (!me.done && !me.lead) {
          try {
            me.wake.await();
          } catch (InterruptedException e) {
            interrupted = true;
          }
        }
      }
      if (!me.done) {
        running = true;
        me.lead = false;
        pass = take();
      }
    } finally {
      lock.unlock();
    }
    if (!pass.isEmpty()) {
      run(pass);
      lock.lock();
      try {
        // each waiter has a condition of its own: a pass wakes its rows and the next lead, not everyone
        for (Step s : pass) {
          s.done = true;
          if (s.wake != null) {
            s.wake.signal();
          }
        }
        Step next = waiting.peekFirst();
        if (next == null) {
          running = false;
        } else {
          next.lead = true; // the oldest waiter runs the next pass; the combiner stays marked busy
          next.wake.signal();
        }
      } finally {
        lock.unlock();
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    if (me.error != null) {
      throw me.error;
    }
    return me.logits;
  }

  /** The oldest waiting step (the caller's own) and every one that rides with it. */
  private List<Step> take() {
    List<Step> pass = new ArrayList<>();
    Step first = waiting.pollFirst();
    pass.add(first);
    if (first.row.tokens().length > SHORT_ROW_TOKENS) {
      return pass;
    }
    for (Iterator<Step> it = waiting.iterator(); it.hasNext() && pass.size() < maxRows; ) {
      Step s = it.next();
      if (s.row.tokens().length <= SHORT_ROW_TOKENS) {
        it.remove();
        pass.add(s);
      }
    }
    return pass;
  }

  void run(List<Step> pass) {
    List<BatchRunner.Row> batch = new ArrayList<>(pass.size());
    for (Step s : pass) {
      batch.add(s.row);
    }
    try {
      long t0 = System.nanoTime();
      float[][] out = runner.forward(batch);
      passNanos.add(System.nanoTime() - t0);
      passes.increment();
      rows.add(pass.size());
      if (passes.sum() % LOG_EVERY_PASSES == 0) {
        log.info(String.format("draft passes=%d rowsPerPass=%.2f msPerPass=%.3f sessions=%d", passes.sum(),
            rows.sum() / (double) passes.sum(), passNanos.sum() / 1e6 / passes.sum(), runner.sessionCount()));
      }
      for (int i = 0; i < pass.size(); i++) {
        pass.get(i).logits = out[i];
      }
    } catch (RuntimeException e) {
      if (pass.size() == 1) {
        pass.get(0).error = e;
        return;
      }
      for (Step s : pass) { // the forward checks every row before it runs any: none advanced
        run(List.of(s));
      }
    }
  }
}
