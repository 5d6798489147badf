package dev.dsd.node.wire;

import java.util.ArrayDeque;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.LongAdder;

/**
 * Runs tasks one at a time, in submission order, on a shared pool: a session's rounds must be
 * computed in order, but many sessions share the compute threads.
 */
public final class SerialExecutor implements Executor {
  /** Tasks that threw instead of reporting their failure: each one is a bug, which tests count. */
  private static final LongAdder ESCAPED = new LongAdder();

  private final Executor pool;
  private final ArrayDeque<Runnable> queue = new ArrayDeque<>();
  private boolean running;

  public SerialExecutor(Executor pool) {
    this.pool = pool;
  }

  @Override
  public void execute(Runnable task) {
    synchronized (queue) {
      queue.add(task);
      if (running) {
        return;
      }
      running = true;
    }
    pool.execute(this::drain);
  }

  /** Failures that escaped their task, since the JVM started. */
  public static long escapedFailures() {
    return ESCAPED.sum();
  }

  private void drain() {
    while (true) {
      Runnable next;
      synchronized (queue) {
        next = queue.poll();
        if (next == null) {
          running = false;
          return;
        }
      }
      try {
        next.run();
      } catch (RuntimeException e) {
        // a task reports its own failures; one that escapes must not stop the queue
        ESCAPED.increment();
        org.slf4j.LoggerFactory.getLogger(SerialExecutor.class).warn("task failed: {}", e.toString());
      }
    }
  }
}
