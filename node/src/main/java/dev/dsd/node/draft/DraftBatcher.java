package dev.dsd.node.draft;

import dev.dsd.node.draft.proto.Error;
import dev.dsd.pipeline.runtime.BatchRunner;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The draft node's one compute thread. Each pass runs a single draft step of every session that is
 * waiting for one, as rows of one batched forward; a request that arrives meanwhile joins at the
 * next pass, so concurrent sessions share passes without waiting for each other's proposals to
 * end. Session state changes only here (tasks queued by the streams run between passes), which is
 * what lets a pass read every session's cache without locks.
 */
final class DraftBatcher implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DraftBatcher.class);
  /** Rows with more new tokens than this (prefills) get passes of their own, so short rows are not padded to them. */
  static final int SHORT_ROW_TOKENS = 4;

  private final BatchRunner runner;
  private final DraftStats stats;
  private final int maxRows;
  private final int logEvery;
  private final String node;
  private final LinkedBlockingQueue<Runnable> tasks = new LinkedBlockingQueue<>();
  private final List<DraftJob> active = new ArrayList<>();
  private final Thread thread;
  private volatile boolean stopped;
  private boolean prefillTurn;

  DraftBatcher(BatchRunner runner, DraftStats stats, int maxRows, int logEvery, String node) {
    this.runner = runner;
    this.stats = stats;
    this.maxRows = maxRows;
    this.logEvery = logEvery;
    this.node = node;
    this.thread = new Thread(this::loop, "dsd-draft-batcher");
    thread.setDaemon(true);
    thread.start();
  }

  /** Runs {@code task} on the batcher thread before the next pass. */
  void submit(Runnable task) {
    tasks.add(task);
  }

  /** From a task: the job takes part in passes from the next one on. */
  void activate(DraftJob job) {
    active.add(job);
  }

  /** From a task: drops the session's job, if it has one running. */
  void cancel(ServedSession s) {
    active.removeIf(j -> j.session() == s);
  }

  /** Jobs in progress, for tasks that must answer them (shutdown). */
  List<DraftJob> active() {
    return active;
  }

  private void loop() {
    while (!stopped) {
      try {
        Runnable task = active.isEmpty() ? tasks.poll(200, TimeUnit.MILLISECONDS) : tasks.poll();
        for (; task != null; task = tasks.poll()) {
          runTask(task);
        }
        if (!active.isEmpty()) {
          pass(choose());
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        stats.internalFailure();
        log.error("draft batcher node={}: {}", node, e.toString(), e);
      }
    }
  }

  private void runTask(Runnable task) {
    try {
      task.run();
    } catch (RuntimeException e) {
      stats.internalFailure();
      log.warn("draft task failed node={}: {}", node, e.toString());
    }
  }

  /**
   * Every short row (decode steps) up to the batch limit; a prefill alone. When both wait they take
   * turns, so neither a stream of proposals nor a long prompt starves the other.
   */
  private List<DraftJob> choose() {
    List<DraftJob> shortRows = new ArrayList<>();
    DraftJob prefill = null;
    for (DraftJob j : active) {
      if (j.tokens().length <= SHORT_ROW_TOKENS) {
        if (shortRows.size() < maxRows) {
          shortRows.add(j);
        }
      } else if (prefill == null) {
        prefill = j;
      }
    }
    if (prefill != null && (shortRows.isEmpty() || prefillTurn)) {
      prefillTurn = false;
      return List.of(prefill);
    }
    prefillTurn = prefill != null;
    return shortRows;
  }

  private void pass(List<DraftJob> jobs) {
    List<BatchRunner.Row> rows = new ArrayList<>(jobs.size());
    int tokens = 0;
    for (DraftJob j : jobs) {
      rows.add(new BatchRunner.Row(j.session().kv, j.tokens()));
      tokens += j.tokens().length;
    }
    long t0 = System.nanoTime();
    float[][] logits;
    try {
      logits = runner.forward(rows);
    } catch (RuntimeException e) {
      if (jobs.size() > 1) { // find the row at fault rather than fail every session in the pass
        log.warn("draft pass of {} rows failed node={}: {}; running them one by one", jobs.size(), node, e.toString());
        jobs.forEach(j -> pass(List.of(j)));
        return;
      }
      fail(jobs.get(0), e);
      return;
    }
    long nanos = System.nanoTime() - t0;
    stats.pass(rows.size(), tokens, nanos);
    for (int i = 0; i < jobs.size(); i++) {
      DraftJob j = jobs.get(i);
      boolean done;
      try {
        done = j.advance(logits[i], rows.size(), nanos);
      } catch (RuntimeException e) {
        // a bug on this session's side: the pass already advanced every row's cache, so the other
        // jobs must still take their step, and this one must not stay active to fail every pass
        stats.internalFailure();
        fail(j, e);
        continue;
      }
      if (done) {
        active.remove(j);
        j.finish();
      }
    }
    if (logEvery > 0 && stats.passes() % logEvery == 0) {
      log.info("draft batching node={} sessions={} waiting={} {}", node, runner.sessionCount(), active.size(), stats);
    }
  }

  private void fail(DraftJob j, RuntimeException e) {
    active.remove(j);
    stats.error();
    ServedSession s = j.session();
    log.warn("draft step failed node={} session={} peer={}: {}", node, s.id, s.owner, e.toString());
    s.busy = false;
    Error.Code code = e instanceof dev.dsd.pipeline.runtime.RuntimeLimitException ? Error.Code.LIMIT : Error.Code.INTERNAL;
    s.stream.send(DraftProtocol.error(code, s.id, s.lastSeq, "draft step failed: " + e.getMessage()));
  }

  @Override
  public void close() {
    stopped = true;
    thread.interrupt();
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    tasks.clear();
  }
}
