package dev.dsd.node.http;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * At most {@code n} generations at once, each on its own thread: generation blocks for seconds and
 * must never run on the Netty event loop. A task beyond {@code n} is refused, not queued.
 */
final class GenerationSlots {
  private final int capacity;
  private final Semaphore free;
  private final ExecutorService threads;

  GenerationSlots(int n) {
    capacity = n;
    free = new Semaphore(n);
    AtomicInteger count = new AtomicInteger();
    threads = Executors.newFixedThreadPool(n, r -> {
      Thread t = new Thread(r, "dsd-http-generation-" + count.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
  }

  private static final ThreadLocal<Runnable> CURRENT = ThreadLocal.withInitial(() -> () -> { });

  /**
   * Frees the calling task's slot now, once its generation is over: the answer is still being
   * written, and a client that reads it and sends its next request at once must find the slot free.
   */
  static void releaseCurrent() {
    CURRENT.get().run();
  }

  int capacity() {
    return capacity;
  }

  /** Runs {@code task} on a free slot; false when all are taken or the server is closing. */
  boolean trySubmit(Runnable task) {
    if (!free.tryAcquire()) {
      return false;
    }
    try {
      threads.execute(() -> {
        java.util.concurrent.atomic.AtomicBoolean released = new java.util.concurrent.atomic.AtomicBoolean();
        CURRENT.set(() -> {
          if (released.compareAndSet(false, true)) {
            free.release();
          }
        });
        try {
          task.run();
        } finally {
          CURRENT.get().run();
          CURRENT.remove();
        }
      });
      return true;
    } catch (RejectedExecutionException e) {
      free.release();
      return false;
    }
  }

  /** Stops taking tasks and waits up to {@code graceMillis} for running ones, then interrupts them. */
  void close(long graceMillis) {
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
