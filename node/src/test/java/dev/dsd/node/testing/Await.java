package dev.dsd.node.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** Waits for what happens asynchronously (sessions closing down a chain): a moment, not forever. */
public final class Await {
  private Await() {}

  /**
   * Polls {@code ok} for up to 10 s, then asserts it. The last poll's answer is asserted, not a new
   * one: a condition may have effects (a request that takes a slot, say).
   */
  public static void awaitTrue(BooleanSupplier ok, Supplier<String> what) throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    boolean done;
    while (!(done = ok.getAsBoolean()) && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertTrue(done, what);
  }
}
