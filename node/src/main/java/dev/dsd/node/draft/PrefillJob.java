package dev.dsd.node.draft;

import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Opened;
import java.util.Arrays;

/** Caches an opened session's prompt except its last token (which the first proposal feeds). */
final class PrefillJob implements DraftJob {
  private final ServedSession session;
  private final int[] tokens;
  private final int vocab;
  private long computeNanos;

  PrefillJob(ServedSession session, int vocab) {
    this.session = session;
    this.vocab = vocab;
    int[] prompt = session.open.getPromptList().stream().mapToInt(Integer::intValue).toArray();
    this.tokens = Arrays.copyOf(prompt, prompt.length - 1);
  }

  /** A one-token prompt has nothing to cache: the session is ready at once. */
  boolean needed() {
    return tokens.length > 0;
  }

  @Override
  public ServedSession session() {
    return session;
  }

  @Override
  public int[] tokens() {
    return tokens;
  }

  @Override
  public boolean advance(float[] logits, int rows, long passNanos) {
    computeNanos += passNanos;
    return true;
  }

  @Override
  public void finish() {
    session.busy = false;
    session.stream.send(DraftMessage.newBuilder().setOpened(Opened.newBuilder().setSessionId(session.id)
        .setVocab(vocab).setComputeMicros((int) Math.min(Integer.MAX_VALUE, computeNanos / 1000))).build());
  }
}
