package dev.dsd.testnet.sim;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * One peer's compute: a queue of calls and one worker. When the worker frees, the calls waiting
 * from different sessions go into one batched call, oldest first, up to {@code maxRows} calls and
 * {@code maxTokens} tokens (the oldest always goes, even alone over the token cap); no timer holds a
 * call back to wait for company.
 */
final class BatchServer {
  /** One call waiting for the worker. */
  interface Job {
    int tokens();

    /** Draft steps this call needs (0 for a stage call). */
    default int steps() {
      return 0;
    }

    /** The call's result is ready; {@code computeMs} is the batched call's compute. */
    void done(double computeMs, int rows);

    /** The peer left before the call finished. */
    void lost();
  }

  /** Compute time of one batched call. */
  interface Cost {
    double millis(List<Job> batch);
  }

  private final EventQueue events;
  private final Cost cost;
  private final int maxRows;
  private final int maxTokens;
  private final ArrayDeque<Job> waiting = new ArrayDeque<>();
  private List<Job> running = List.of();
  private boolean busy;
  private boolean gone;
  private double busyMs;
  private long calls;
  private long rows;

  BatchServer(EventQueue events, Cost cost, int maxRows, int maxTokens) {
    this.events = events;
    this.cost = cost;
    this.maxRows = maxRows;
    this.maxTokens = maxTokens;
  }

  void submit(Job job) {
    if (gone) {
      job.lost();
      return;
    }
    waiting.addLast(job);
    if (!busy) {
      startNext();
    }
  }

  private void startNext() {
    if (waiting.isEmpty() || gone) {
      busy = false;
      return;
    }
    List<Job> batch = new ArrayList<>();
    int tokens = 0;
    while (!waiting.isEmpty() && batch.size() < maxRows
        && (batch.isEmpty() || tokens + waiting.peekFirst().tokens() <= maxTokens)) {
      Job j = waiting.pollFirst();
      tokens += j.tokens();
      batch.add(j);
    }
    busy = true;
    running = batch;
    double ms = cost.millis(batch);
    busyMs += ms;
    calls++;
    rows += batch.size();
    events.after(ms, () -> {
      if (gone) {
        return;
      }
      running = List.of();
      for (Job j : batch) {
        j.done(ms, batch.size());
      }
      startNext();
    });
  }

  /** The peer left: every call queued or running here is lost. */
  void leave() {
    gone = true;
    List<Job> lost = new ArrayList<>(running);
    lost.addAll(waiting);
    waiting.clear();
    running = List.of();
    for (Job j : lost) {
      j.lost();
    }
  }

  double busyMs() {
    return busyMs;
  }

  long calls() {
    return calls;
  }

  /** Mean sessions per call. */
  double meanRows() {
    return calls == 0 ? 0 : (double) rows / calls;
  }
}
