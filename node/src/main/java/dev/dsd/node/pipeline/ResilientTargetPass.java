package dev.dsd.node.pipeline;

import dev.dsd.node.generate.TargetPass;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.verification.acceptance.TargetScores;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A pipeline session that survives its stages. It remembers every token the target has accepted
 * into its caches; when a round fails (a stage died, reset, timed out or answered an error), it
 * opens a new session on a route that avoids the failed peer and replays the accepted tokens plus
 * the failed round's tokens in one round, so the KV caches are rebuilt and the round's answer is
 * the same as if nothing had happened. Greedy output is therefore token-for-token that of an
 * undisturbed run; the client only sees a pause.
 */
public final class ResilientTargetPass implements TargetPass {
  private static final Logger log = LoggerFactory.getLogger(ResilientTargetPass.class);
  /** Routes tried after failures within one round before the generation gives up. */
  public static final int MAX_FAILOVERS = 3;

  /** Opens a session on a route avoiding the given peers. */
  @FunctionalInterface
  public interface Opener {
    PipelineTargetPass open(Set<PeerId> avoid);
  }

  private final Opener opener;
  private final java.util.function.Consumer<PeerId> onFailure;
  private final Set<PeerId> avoid = new HashSet<>();
  private PipelineTargetPass current;
  private int[] history = new int[64]; // token ids at cached positions [0, valid)
  private int valid;
  private long bytesOfClosed;
  private int failovers;
  private long longestStallNanos;

  public ResilientTargetPass(Opener opener, java.util.function.Consumer<PeerId> onFailure) {
    this.opener = opener;
    this.onFailure = onFailure;
    this.current = opener.open(Set.of());
  }

  @Override
  public TargetScores run(int keep, int[] tokens, int[] drafts, int rows) {
    if (keep > valid) {
      throw new IllegalArgumentException("keep " + keep + " is beyond the " + valid + " positions sent");
    }
    boolean replay = false;
    long failedAt = 0;
    for (int attempt = 0; ; attempt++) {
      try {
        TargetScores s = replay
            ? current.run(0, concat(Arrays.copyOf(history, keep), tokens), drafts, rows)
            : current.run(keep, tokens, drafts, rows);
        if (replay) {
          long stall = System.nanoTime() - failedAt;
          longestStallNanos = Math.max(longestStallNanos, stall);
          log.info("failover done route={} replayed={} stallMs={}", current.route(), keep + tokens.length,
              stall / 1_000_000);
        }
        remember(keep, tokens);
        return s;
      } catch (PipelineException e) {
        if (attempt >= MAX_FAILOVERS) {
          throw new PipelineException(e.code(), "gave up after " + failovers + " failovers: " + e.getMessage(),
              e.failedPeer());
        }
        if (failedAt == 0) {
          failedAt = System.nanoTime();
        }
        failovers++;
        PeerId bad = e.failedPeer();
        if (bad != null) {
          avoid.add(bad);
          onFailure.accept(bad);
        }
        log.warn("stage failed code={} peer={} ({}); rerouting around {} peers", e.code(), bad, e.getMessage(),
            avoid.size());
        bytesOfClosed += current.bytesSent();
        current.close();
        current = opener.open(Set.copyOf(avoid));
        replay = true;
      }
    }
  }

  private void remember(int keep, int[] tokens) {
    if (keep + tokens.length > history.length) {
      history = Arrays.copyOf(history, Math.max(history.length * 2, keep + tokens.length));
    }
    System.arraycopy(tokens, 0, history, keep, tokens.length);
    valid = keep + tokens.length;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  public int failovers() {
    return failovers;
  }

  public long longestStallNanos() {
    return longestStallNanos;
  }

  @Override
  public List<String> route() {
    return current.route();
  }

  @Override
  public long bytesSent() {
    return bytesOfClosed + current.bytesSent();
  }

  @Override
  public void close() {
    current.close();
  }
}
