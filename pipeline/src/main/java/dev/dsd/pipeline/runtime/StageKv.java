package dev.dsd.pipeline.runtime;

import java.util.Arrays;

/**
 * One session's KV cache on a {@link StageBatchRunner}, paged: per hosted layer, keys and values
 * live in pages of {@link #PAGE} positions, each page laid out [kvH, PAGE, hd]. Pages are added as
 * the session fills positions, so memory follows the context a session actually uses, and growing
 * never copies the cache. The session is charged to the shard's KV budget for the positions it
 * holds (its high-water mark, {@link #charge}), not for its maximum up front. Only {@link #length}
 * positions are valid, so dropping rejected drafts is just lowering it; a call appends only its new
 * positions.
 */
public final class StageKv implements AutoCloseable {
  /** Positions per page: large enough that a gather copies long runs, small enough to waste little. */
  public static final int PAGE = 64;

  private final ShardSession ticket;
  private final ShardSessions sessions;
  private final Object lock;
  private final int pageFloats; // kvH * PAGE * hd
  private final int kvH;
  float[][][] keys; // [layer][page][kvH * PAGE * hd]
  float[][][] values;
  volatile int length; // written under the runner's lock, read without it (a stage checks rounds while a call runs)
  private volatile boolean closed;

  StageKv(ShardSession ticket, ShardSessions sessions, int layers, int kvDim, int kvHeads, Object lock) {
    this.kvH = kvHeads;
    this.ticket = ticket;
    this.sessions = sessions;
    this.lock = lock;
    this.pageFloats = PAGE * kvDim;
    this.keys = new float[layers][0][];
    this.values = new float[layers][0][];
  }

  public String id() {
    return ticket.id();
  }

  public String owner() {
    return ticket.owner();
  }

  public int maxTokens() {
    return ticket.maxTokens();
  }

  /** Positions whose keys and values are cached. */
  public int length() {
    return length;
  }

  /**
   * Charges the shard's KV budget for holding {@code tokens} positions (nothing when the session has
   * held as many before), so a round the budget cannot take is refused before it is queued or run.
   *
   * @throws RuntimeLimitException with what the session asked and what is free
   */
  public void charge(int tokens) {
    sessions.charge(ticket, tokens);
  }

  /** Pages for {@code tokens} positions; called under the runner's lock before a call appends. */
  void ensure(int tokens) {
    int pages = (tokens + PAGE - 1) / PAGE;
    if (pages <= keys[0].length) {
      return;
    }
    charge(tokens);
    for (int l = 0; l < keys.length; l++) {
      int had = keys[l].length;
      keys[l] = Arrays.copyOf(keys[l], pages); // the page table only: pages themselves stay put
      values[l] = Arrays.copyOf(values[l], pages);
      for (int p = had; p < pages; p++) {
        keys[l][p] = new float[pageFloats];
        values[l][p] = new float[pageFloats];
      }
    }
  }

  /** Drops cached positions {@code >= n}; the next call continues at position {@code n}. */
  public void truncate(int n) {
    synchronized (lock) {
      checkOpen();
      if (n < 0 || n > length) {
        throw new IllegalArgumentException("session " + id() + ": cannot truncate to " + n + ", cache holds " + length);
      }
      length = n;
      ticket.touch();
    }
  }

  /**
   * Keeps positions {@code [0, keep)} and then {@code rows} (ascending cache positions at or after
   * {@code keep}), moved down to follow {@code keep} consecutively: after a token tree's verdict the
   * accepted path's keys and values stay, computed at rotary positions keep + depth, which are
   * exactly the consecutive positions they now occupy; rejected branches are dropped. Nothing is
   * recomputed; each kept row is copied once per layer and head.
   */
  public void compact(int keep, int[] rows) {
    synchronized (lock) {
      checkOpen();
      if (keep < 0 || keep > length) {
        throw new IllegalArgumentException("session " + id() + ": cannot keep " + keep + ", cache holds " + length);
      }
      for (int j = 0; j < rows.length; j++) {
        if (rows[j] < keep + j || rows[j] >= length || (j > 0 && rows[j] <= rows[j - 1])) {
          throw new IllegalArgumentException("session " + id() + ": kept rows must be ascending positions in [" + keep
              + ", " + length + "), got " + Arrays.toString(rows));
        }
      }
      for (int j = 0; j < rows.length; j++) {
        int from = rows[j];
        int to = keep + j;
        if (from == to) {
          continue;
        }
        for (int l = 0; l < keys.length; l++) {
          move(keys[l], from, to);
          move(values[l], from, to);
        }
      }
      length = keep + rows.length;
      ticket.touch();
    }
  }

  /** Copies position {@code from} to {@code to} in every head of one layer's pages. */
  private void move(float[][] pages, int from, int to) {
    int kvDim = pageFloats / PAGE;
    int heads = kvH;
    int hd = kvDim / heads;
    float[] src = pages[from / PAGE];
    float[] dst = pages[to / PAGE];
    for (int h = 0; h < heads; h++) {
      System.arraycopy(src, (h * PAGE + from % PAGE) * hd, dst, (h * PAGE + to % PAGE) * hd, hd);
    }
  }

  void checkOpen() {
    if (closed) {
      throw new IllegalStateException("session " + id() + " is closed");
    }
  }

  public boolean isClosed() {
    return closed;
  }

  /** Frees the reservation; waits for a call in progress that uses this cache. */
  @Override
  public void close() {
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
      keys = null;
      values = null;
    }
    ticket.close();
  }
}
