package dev.dsd.node.testing;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A well-behaved client that runs the same cycle of requests over and over while a fuzzer attacks
 * the same server: every cycle must give exactly what the first, undisturbed one gave. The first
 * difference (or failure) is kept for the test to report.
 */
public abstract class HealthyLoop {
  public final AtomicReference<String> failure = new AtomicReference<>();
  public final AtomicInteger cycles = new AtomicInteger();
  private final String what;
  private volatile boolean stopped;

  /** @param what the client and its unit of work, for messages: "session"/"round", "entry"/"proposal" */
  protected HealthyLoop(String what) {
    this.what = what;
  }

  /** One cycle from a fresh start; one fingerprint per request. */
  public abstract List<String> cycle();

  /** Whether a request's fingerprint in a later cycle matches the undisturbed one (by default: equal). */
  protected boolean same(String want, String got) {
    return want.equals(got);
  }

  /** Runs cycles on a new thread until {@link #stop}, each compared with {@code want}. */
  public Thread loop(List<String> want) {
    Thread t = new Thread(() -> {
      try {
        while (!stopped) {
          List<String> got = cycle();
          for (int i = 0; i < want.size(); i++) {
            if (!same(want.get(i), got.get(i))) {
              failure.set("cycle " + cycles.get() + " " + what + " " + i + ": " + got.get(i) + " instead of " + want.get(i));
              return;
            }
          }
          cycles.incrementAndGet();
        }
      } catch (RuntimeException e) {
        failure.set("the healthy " + what + " loop failed: " + e);
      }
    }, "healthy-" + what.replace(' ', '-'));
    t.start();
    return t;
  }

  public void stop() {
    stopped = true;
  }
}
