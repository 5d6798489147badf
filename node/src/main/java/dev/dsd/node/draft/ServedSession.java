package dev.dsd.node.draft;

import dev.dsd.node.generate.VocabMask;
import dev.dsd.node.draft.proto.Accepted;
import dev.dsd.node.draft.proto.DraftMessage;
import dev.dsd.node.draft.proto.Open;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.pipeline.runtime.BatchSession;
import dev.dsd.verification.sampling.Distributions;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One entry's generation on the draft node: its cache and what it has accepted. Like the local
 * ModelDrafter, the cache holds the accepted context except {@link #pending} (at least the last
 * accepted token), so a proposal feeds pending and then k-1 of its own drafts. All of it is touched
 * only on the batcher's thread.
 */
final class ServedSession {
  final String id;
  final PeerId owner;
  final MessageStream<DraftMessage> stream;
  final Open open;
  private final double temperature;
  private final double topP;
  private final SplittableRandom random;
  private final int vocab;
  private final int usable;
  BatchSession kv; // null until the batcher opened it
  private int context; // accepted tokens: prompt + generated
  private int[] pending;
  private int[] lastDrafts; // the last proposal, until an Accepted says what became of it
  long lastSeq;
  boolean busy;
  boolean closed;

  ServedSession(Open open, PeerId owner, MessageStream<DraftMessage> stream, int vocab) {
    this.id = open.getSessionId();
    this.owner = owner;
    this.stream = stream;
    this.open = open;
    this.temperature = open.getTemperature();
    this.topP = open.getTopP();
    // the same stream of draws as a local ModelDrafter with this seed
    this.random = new SplittableRandom(open.getSeed() ^ 0x5DEECE66DL);
    this.vocab = vocab;
    this.usable = open.getUsableVocab() == 0 ? vocab : Math.min(vocab, open.getUsableVocab());
    this.context = open.getPromptCount();
    this.pending = new int[] {open.getPrompt(open.getPromptCount() - 1)};
  }

  boolean greedy() {
    return temperature == 0;
  }

  int[] pending() {
    return pending;
  }

  /** What is wrong with the target's verdicts since the last proposal, or null; nothing is applied. */
  String check(List<Accepted> updates) {
    int ctx = context;
    int[] drafts = lastDrafts;
    for (int i = 0; i < updates.size(); i++) {
      Accepted u = updates.get(i);
      if (u.getContextBefore() != ctx) {
        return "update " + i + " starts at context " + u.getContextBefore() + ", the session has accepted " + ctx;
      }
      int offered = drafts == null ? 0 : drafts.length;
      if (u.getDrafted() != offered) {
        return "update " + i + " judges " + u.getDrafted() + " drafts, the session's last proposal had " + offered;
      }
      // uint32 fields: 2^31 and up arrive as negative ints, which plain comparisons let through
      if (Integer.compareUnsigned(u.getKept(), u.getDrafted()) > 0) {
        return "update " + i + " keeps " + Integer.toUnsignedString(u.getKept()) + " of " + u.getDrafted() + " drafts";
      }
      if (Integer.compareUnsigned(u.getNext(), usable) >= 0) {
        return "update " + i + ": token id " + Integer.toUnsignedString(u.getNext()) + " is outside the vocabulary of "
            + usable;
      }
      ctx += u.getKept() + 1;
      drafts = null;
    }
    return null;
  }

  /** Applies verdicts that {@link #check} found right. */
  void accept(List<Accepted> updates) {
    for (Accepted u : updates) {
      apply(u.getContextBefore(), u.getDrafted(), u.getKept(), u.getNext());
    }
  }

  private void apply(int contextBefore, int k, int n, int next) {
    if (k == 0) { // a round without drafts: the cache is unchanged and one more token is pending
      pending = Arrays.copyOf(pending, pending.length + 1);
      pending[pending.length - 1] = next;
    } else {
      // the cache holds context + drafts[0..k-2]; keep context + drafts[0..n-1]
      kv.truncate(Math.min(contextBefore + n, contextBefore + k - 1));
      pending = n == k ? new int[] {lastDrafts[k - 1], next} : new int[] {next};
    }
    lastDrafts = null;
    context = contextBefore + n + 1;
  }

  /** Positions a proposal of k drafts leaves in the cache once the (checked) {@code updates} are applied. */
  long cacheAfter(List<Accepted> updates, int k) {
    if (updates.isEmpty()) {
      return (long) kv.length() + pending.length + k - 1;
    }
    // after any verdict the cache holds every accepted token but the pending ones
    long ctx = context;
    for (Accepted u : updates) {
      ctx += u.getKept() + 1;
    }
    return ctx + k - 1;
  }

  void proposed(int[] drafts) {
    lastDrafts = drafts;
  }

  /**
   * Picks the next draft from the logits of the row's last new position, as the local drafter
   * does: argmax when greedy, else a draw from the top-p distribution, which is returned.
   */
  int pick(float[] logits, int row, double[][] distributions, int index) {
    VocabMask.applyRow(logits, row, vocab, usable);
    if (greedy()) {
      return Distributions.argmax(logits, row, vocab);
    }
    double[] q = Distributions.topP(Distributions.softmax(logits, row, vocab, temperature), topP);
    distributions[index] = q;
    return Distributions.draw(q, random.nextDouble());
  }
}
