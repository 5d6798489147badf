package dev.dsd.testnet.sim;

import java.util.PriorityQueue;

/**
 * Simulated time and the events waiting in it. Events run in time order; two events at the same
 * instant run in the order they were scheduled, so a run depends only on its inputs and its seed.
 */
public final class EventQueue {
  /** Events one run may execute before it is stopped as runaway. */
  public static final long MAX_EVENTS = 2_000_000_000L;

  private record Event(double at, long seq, Runnable action) {}

  private final PriorityQueue<Event> queue = new PriorityQueue<>((a, b) -> a.at != b.at
      ? Double.compare(a.at, b.at) : Long.compare(a.seq, b.seq));
  private double now;
  private long seq;
  private long executed;

  /** Current simulated time in milliseconds. */
  public double now() {
    return now;
  }

  public long executed() {
    return executed;
  }

  /** Runs {@code action} {@code delayMillis} from now (never in the past). */
  public void after(double delayMillis, Runnable action) {
    if (!(delayMillis >= 0)) {
      throw new IllegalArgumentException("an event cannot be scheduled " + delayMillis + " ms from now");
    }
    queue.add(new Event(now + delayMillis, seq++, action));
  }

  /** Runs {@code action} at absolute time {@code atMillis}, or now if that has passed. */
  public void at(double atMillis, Runnable action) {
    after(Math.max(0, atMillis - now), action);
  }

  /** Runs events until none are left or the next one lies past {@code untilMillis}. */
  public void run(double untilMillis) {
    while (!queue.isEmpty() && queue.peek().at <= untilMillis) {
      Event e = queue.poll();
      now = e.at;
      if (++executed > MAX_EVENTS) {
        throw new IllegalStateException("simulation ran past " + MAX_EVENTS + " events");
      }
      e.action.run();
    }
  }

  public boolean isEmpty() {
    return queue.isEmpty();
  }
}
