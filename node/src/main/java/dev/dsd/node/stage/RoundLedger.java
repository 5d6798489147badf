package dev.dsd.node.stage;

import dev.dsd.node.pipeline.proto.Cancel;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.pipeline.runtime.StageKv;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * One session's rounds at a stage as pipelined speculation sees them: which are queued or in a
 * call, which a Cancel dropped, and what a Cancel still has to do. A session's rounds run one at a
 * time and in order, so a cancel only has to find the ones after its round. Everything here is
 * guarded by the ledger's monitor; the session holds it while it checks and sends a round's output,
 * so a cancel either drops that output or goes on after it.
 */
final class RoundLedger {
  /** Live rounds queued or in a call: {round, cache length after it}, in order. */
  private final ArrayDeque<long[]> pending = new ArrayDeque<>();
  /** Cancelled rounds the scheduler may still hand to a call: dropped there, or their output dropped. */
  private final Set<Long> cancelled = new HashSet<>();
  /** Cancels to pass on once the rounds they let stand have gone on before them. */
  private final ArrayDeque<PipelineMessage> toForward = new ArrayDeque<>();
  private int committedLength; // cache length after the last live round that ran
  private StageRound inCall;
  private int truncateTo = -1; // a cancel's keep, applied once no round of the session is queued or running

  /** A checked round went to the scheduler. */
  synchronized void submitted(long round, int lengthAfter) {
    pending.add(new long[] {round, lengthAfter});
    truncateTo = -1; // this round's own keep rolls the cache back when it runs
  }

  /** The scheduler put {@code j} in a call; false when it was cancelled meanwhile (then it is dropped). */
  synchronized boolean startCall(StageRound j) {
    if (cancelled.remove(j.round().getRound())) {
      if (inCall == j) {
        inCall = null;
      }
      return false;
    }
    inCall = j;
    return true;
  }

  synchronized boolean isCancelled(StageRound j) {
    return cancelled.contains(j.round().getRound());
  }

  /** {@code j}'s call is over; whether its output stands (false: it was cancelled while it ran). */
  synchronized boolean endCall(StageRound j) {
    if (inCall == j) {
      inCall = null;
    }
    long round = j.round().getRound();
    boolean stands = !cancelled.remove(round);
    if (stands && !pending.isEmpty() && pending.peekFirst()[0] == round) {
      committedLength = (int) pending.pollFirst()[1];
    }
    return stands;
  }

  /**
   * Takes a cancel: marks the rounds after its round as cancelled (returned, so the scheduler can
   * drop those still queued) and queues the cancel to pass on; returns null and changes nothing when
   * it does not fit, with the reason in {@code problem[0]}.
   */
  synchronized Set<Long> cancel(PipelineMessage m, long lastRound, String[] problem) {
    Cancel c = m.getCancel();
    if (Long.compareUnsigned(c.getAfterRound(), lastRound) > 0) {
      problem[0] = "cancel after round " + Long.toUnsignedString(c.getAfterRound()) + ": the last round here is "
          + lastRound;
      return null;
    }
    int standing = committedLength;
    for (long[] p : pending) {
      if (p[0] <= c.getAfterRound()) {
        standing = (int) p[1];
      }
    }
    if (Integer.toUnsignedLong(c.getKeep()) > standing) {
      problem[0] = "cancel keep " + Integer.toUnsignedString(c.getKeep()) + " is beyond the " + standing
          + " positions the rounds up to " + c.getAfterRound() + " leave cached";
      return null;
    }
    Set<Long> gone = new HashSet<>();
    for (Iterator<long[]> it = pending.iterator(); it.hasNext(); ) {
      long[] p = it.next();
      if (p[0] > c.getAfterRound()) {
        cancelled.add(p[0]);
        gone.add(p[0]);
        it.remove();
      }
    }
    truncateTo = c.getKeep();
    toForward.add(m);
    return gone;
  }

  /** Cancelled rounds the scheduler dropped before any call: nothing will ask about them again. */
  synchronized void dropped(List<StageRound> rounds) {
    for (StageRound j : rounds) {
      cancelled.remove(j.round().getRound());
    }
  }

  /**
   * What cancels left to do once the rounds they let stand are out: returns the cancels to pass on
   * now (never ahead of such a round's output: the next stage would not know the round named), and
   * rolls {@code kv} back once no round of the session is queued or in a call.
   */
  synchronized List<PipelineMessage> settle(StageKv kv, boolean ended) {
    List<PipelineMessage> out = new ArrayList<>();
    while (!toForward.isEmpty()
        && (pending.isEmpty() || pending.peekFirst()[0] > toForward.peekFirst().getCancel().getAfterRound())) {
      out.add(toForward.poll());
    }
    if (truncateTo >= 0 && inCall == null && pending.isEmpty() && !ended) {
      kv.truncate(Math.min(truncateTo, kv.length()));
      truncateTo = -1;
    }
    return out;
  }
}
