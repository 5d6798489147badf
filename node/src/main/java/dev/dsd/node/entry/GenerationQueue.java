package dev.dsd.node.entry;

import java.util.ArrayDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.DoubleConsumer;

/**
 * The generation slots of an entry with a bounded FIFO queue in front: a request runs at once when
 * a slot is free, waits its turn when none is, and is refused only when {@link #maxWaiting()}
 * requests already wait. Generation blocks for seconds, so each runs on its own thread, never on an
 * event loop. Shared by the HTTP API and {@code /dsd/generate/1.0.0}, so both kinds of client
 * queue in one line.
 *
 * <p>Slots default to what the swarm batches for one entry: {@link #DEFAULT_SLOTS} sessions fit in one
 * stage call (32 rows) and in one peer's share of a stage (32) and of a draft node (16, the smallest
 * of the three). More concurrent generations would only wait at the stages, or be refused a draft
 * session by the draft node, so they wait here instead, where a client can be told.
 */
public final class GenerationQueue {
  /** Generations at once: one peer's default share of a draft node, which a stage call also holds. */
  public static final int DEFAULT_SLOTS = 16;
  /** Requests that may wait for a slot before new ones are refused. */
  public static final int DEFAULT_MAX_WAITING = 256;
  /** Generations whose durations the Retry-After estimate averages. */
  private static final double SERVICE_EWMA_WEIGHT = 0.1;

  private record Waiting(Runnable task, long since) {}

  private static final ThreadLocal<Runnable> CURRENT = ThreadLocal.withInitial(() -> () -> { });
  private static final ThreadLocal<Long> SUBMITTED = new ThreadLocal<>();

  private final int slots;
  private final int maxWaiting;
  private final DoubleConsumer waitSeconds;
  private final ExecutorService threads;
  private final ArrayDeque<Waiting> waiting = new ArrayDeque<>();
  private int running;
  private boolean closed;
  private double serviceSeconds = 10; // a guess until generations have finished

  /** @param waitSeconds told how long each request waited for its slot (0 when one was free) */
  public GenerationQueue(int slots, int maxWaiting, DoubleConsumer waitSeconds) {
    if (slots < 1 || maxWaiting < 0) {
      throw new IllegalArgumentException("a generation queue needs >= 1 slot and >= 0 waiting places, got " + slots
          + " and " + maxWaiting);
    }
    this.slots = slots;
    this.maxWaiting = maxWaiting;
    this.waitSeconds = waitSeconds;
    AtomicInteger count = new AtomicInteger();
    // at most `slots` tasks run, plus the few ms a finished one spends writing its answer
    this.threads = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "dsd-generation-" + count.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
  }

  public int capacity() {
    return slots;
  }

  public int maxWaiting() {
    return maxWaiting;
  }

  /** Requests waiting for a slot now. */
  public synchronized int waiting() {
    return waiting.size();
  }

  public synchronized int running() {
    return running;
  }

  /** Seconds a client refused now might wait before a place frees up: at least 1. */
  public synchronized int retryAfterSeconds() {
    double perPlace = serviceSeconds / slots;
    return (int) Math.max(1, Math.min(60, Math.ceil(perPlace * Math.max(1, waiting.size() - maxWaiting + 1))));
  }

  /** Runs {@code task} now or after the requests ahead of it; false when the queue is full or closed. */
  public boolean trySubmit(Runnable task) {
    long now = System.nanoTime();
    synchronized (this) {
      if (closed) {
        return false;
      }
      if (running >= slots) {
        if (waiting.size() >= maxWaiting) {
          return false;
        }
        waiting.add(new Waiting(task, now));
        return true;
      }
      running++;
    }
    return start(new Waiting(task, now));
  }

  /**
   * Frees the calling task's slot now, once its generation is over: the answer is still being
   * written, and a client that reads it and sends its next request at once must find the slot free.
   */
  public static void releaseCurrent() {
    CURRENT.get().run();
  }

  /** When the calling task's request arrived ({@link System#nanoTime()}), or null outside a task. */
  public static Long submittedAt() {
    return SUBMITTED.get();
  }

  private boolean start(Waiting w) {
    waitSeconds.accept((System.nanoTime() - w.since()) / 1e9);
    try {
      threads.execute(() -> {
        AtomicBoolean released = new AtomicBoolean();
        long t0 = System.nanoTime();
        CURRENT.set(() -> {
          if (released.compareAndSet(false, true)) {
            finished((System.nanoTime() - t0) / 1e9);
          }
        });
        SUBMITTED.set(w.since());
        try {
          w.task().run();
        } finally {
          CURRENT.get().run();
          CURRENT.remove();
          SUBMITTED.remove();
        }
      });
      return true;
    } catch (RejectedExecutionException e) {
      synchronized (this) {
        running--;
      }
      return false;
    }
  }

  /** A slot came free: the oldest waiting request takes it. */
  private void finished(double seconds) {
    Waiting next;
    synchronized (this) {
      serviceSeconds += SERVICE_EWMA_WEIGHT * (seconds - serviceSeconds);
      next = closed ? null : waiting.poll();
      if (next == null) {
        running--;
        return;
      }
    }
    start(next);
  }

  /**
   * Stops taking requests, drops the waiting ones (their connections close with the server),
   * and waits up to {@code graceMillis} for running ones, then interrupts them.
   */
  public void close(long graceMillis) {
    synchronized (this) {
      closed = true;
      waiting.clear();
    }
    threads.shutdown();
    try {
      if (!threads.awaitTermination(graceMillis, TimeUnit.MILLISECONDS)) {
        threads.shutdownNow();
      }
    } catch (InterruptedException e) {
      threads.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
