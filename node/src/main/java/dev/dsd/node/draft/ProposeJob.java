package dev.dsd.node.draft;

import dev.dsd.node.draft.proto.Distribution;
import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Drafts;

/**
 * k draft steps of one session: the first feeds the session's pending tokens, each later one the
 * draft just picked. Each step is one row of a batched pass, shared with whichever other sessions
 * are drafting at that moment.
 */
final class ProposeJob implements DraftJob {
  private final ServedSession session;
  private final long seq;
  private final int vocab;
  private final int[] out;
  private final double[][] distributions;
  private final long queuedAt;
  private long startedAt;
  private long computeNanos;
  private int maxRows;
  private int step;

  ProposeJob(ServedSession session, long seq, int k, int vocab, long queuedAt) {
    this.session = session;
    this.seq = seq;
    this.vocab = vocab;
    this.out = new int[k];
    this.distributions = new double[k][];
    this.queuedAt = queuedAt;
  }

  @Override
  public ServedSession session() {
    return session;
  }

  @Override
  public int[] tokens() {
    return step == 0 ? session.pending() : new int[] {out[step - 1]};
  }

  @Override
  public boolean advance(float[] logits, int rows, long passNanos) {
    if (step == 0) {
      startedAt = System.nanoTime() - passNanos;
    }
    computeNanos += passNanos;
    maxRows = Math.max(maxRows, rows);
    out[step] = session.pick(logits, logits.length - vocab, distributions, step);
    step++;
    return step == out.length;
  }

  @Override
  public void finish() {
    session.proposed(out);
    session.busy = false;
    Drafts.Builder d = Drafts.newBuilder().setSessionId(session.id).setSeq(seq).setBatchRows(maxRows)
        .setComputeMicros((int) Math.min(Integer.MAX_VALUE, computeNanos / 1000))
        .setQueueMicros((int) Math.min(Integer.MAX_VALUE, Math.max(0, startedAt - queuedAt) / 1000));
    for (int i = 0; i < out.length; i++) {
      d.addTokens(out[i]);
      if (!session.greedy()) {
        d.addDistributions(compact(distributions[i]));
      }
    }
    session.stream.send(DraftMessage.newBuilder().setDrafts(d).build());
  }

  /** The support of a top-p distribution as ids and probabilities; dense when most ids have mass. */
  static Distribution compact(double[] q) {
    int support = 0;
    for (double p : q) {
      if (p > 0) {
        support++;
      }
    }
    Distribution.Builder b = Distribution.newBuilder();
    if (support * 2 > q.length) { // an id costs about as much as its probability: dense is smaller
      for (double p : q) {
        b.addProbs(p);
      }
      return b.build();
    }
    for (int i = 0; i < q.length; i++) {
      if (q[i] > 0) {
        b.addIds(i).addProbs(q[i]);
      }
    }
    return b.build();
  }
}
