package dev.dsd.node.entry;

import dev.dsd.node.pipeline.PipelineException;

import dev.dsd.node.generate.PipelinedTarget;
import dev.dsd.node.routing.NoRouteException;
import dev.dsd.node.routing.Route;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.verification.acceptance.TargetScores;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A pipeline session that survives its stages and checks them.
 *
 * <p>Failover: it remembers every token the target has accepted into its caches; when a round
 * fails (a stage died, reset, timed out or answered an error), it opens a new session on a route
 * that avoids the failed peer and replays the accepted tokens plus the failed round's tokens in one
 * round, so the KV caches are rebuilt and the round's answer is what it would have been. Greedy
 * output is therefore token-for-token that of an undisturbed run; the client sees a pause.
 *
 * <p>Spot checks: with a set probability a round is also run on a route where one stage is swapped
 * for a replica serving the same layers (replaying the session there). If the answers disagree, a
 * third replica decides; the peer in the minority is banned, the round's answer is the majority's,
 * and the session moves off a banned peer. Nobody else in peer-to-peer inference checks the
 * activations a stranger returns; this is the cheap, statistical version of doing so.
 *
 * <p>Formats: every route of one session (the first, each failover, each replica a spot check
 * compares) keeps its weights in the format of the first route, so the output does not depend on
 * which peers served it, and an honest replica of another format is never taken for a liar.
 *
 * <p>Pipelined rounds: it keeps every round sent and not yet answered. When the awaited one fails,
 * the new route gets the accepted history plus that round's tokens as one round, then every later
 * round in flight again, in order; so the answers, and greedy output, are those of an undisturbed
 * run. A cancel forgets the rounds it drops, so they are never replayed.
 */
public final class ResilientTargetPass implements PipelinedTarget {
  private static final Logger log = LoggerFactory.getLogger(ResilientTargetPass.class);
  /** Routes tried after failures within one round before the generation gives up. */
  public static final int MAX_FAILOVERS = 3;
  /** Two honest stages differ by rounding (16-bit activations); a liar by far more. */
  public static final double PROBABILITY_TOLERANCE = 0.05;

  private final PipelineGenerator.RouteSource routes;
  private final Function<Route, PipelineTargetPass> opener;
  private final double spotCheck;
  private final SplittableRandom random;
  private final Set<PeerId> avoid = new HashSet<>();
  /** The session's weights format: the one asked for, else fixed by the first route opened. */
  private WeightFormat weights;
  private PipelineTargetPass current;
  private int[] history = new int[64]; // token ids at cached positions [0, valid)
  private int valid;
  private int[] lastParents; // the last round's tree (null after a chain round), hung on position lastTreeAt - 1
  private int lastTreeAt;
  private long bytesOfClosed;
  private int failovers;
  private int checks;
  private long longestStallNanos;
  /** Pipelined rounds sent and not yet awaited, by handle, in order. */
  private final java.util.TreeMap<Long, Sent> inFlight = new java.util.TreeMap<>();
  private long handles;
  private long lastAwaited = -1; // handle of the last awaited round
  private long lastAwaitedInner = -1; // its round number on the current route

  /** A pipelined round as the loop sent it, and its round number on the current route (-1: not sent there). */
  private record Sent(int keep, int[] tokens, int[] drafts, int rows, long inner) {
    Sent on(long innerRound) {
      return new Sent(keep, tokens, drafts, rows, innerRound);
    }
  }

  /**
   * @param weights the weights format every route must keep, or null to take the best route's and
   *     keep that one for the rest of the session
   */
  public ResilientTargetPass(PipelineGenerator.RouteSource routes, WeightFormat weights,
      Function<Route, PipelineTargetPass> opener, double spotCheckProbability, long seed) {
    this.routes = routes;
    this.weights = weights;
    this.opener = opener;
    this.spotCheck = spotCheckProbability;
    this.random = new SplittableRandom(seed ^ 0x5B07C4EC4L);
    this.current = openAvoiding();
  }

  @Override
  public TargetScores run(int keep, int[] tokens, int[] drafts, int rows) {
    if (keep > valid) {
      throw new IllegalArgumentException("keep " + keep + " is beyond the " + valid + " positions sent");
    }
    return withFailover(keep + tokens.length, replay -> {
      TargetScores s = replay
          ? current.run(0, concat(Arrays.copyOf(history, keep), tokens), drafts, rows)
          : current.run(keep, tokens, drafts, rows);
      remember(keep, tokens);
      lastParents = null;
      return spotCheck > 0 && random.nextDouble() < spotCheck ? check(s, drafts, rows) : s;
    });
  }

  /**
   * Runs a synchronous round ({@code round}, told whether to replay the history first) until it
   * succeeds: after a failure the failed peer is avoided, the route switched and the round replayed,
   * at most {@link #MAX_FAILOVERS} times. {@code replayed} positions are what a replay sends.
   */
  private TargetScores withFailover(int replayed, java.util.function.Function<Boolean, TargetScores> round) {
    boolean replay = false;
    long failedAt = 0;
    for (int attempt = 0; ; attempt++) {
      try {
        TargetScores s = round.apply(replay);
        if (replay) {
          long stall = System.nanoTime() - failedAt;
          longestStallNanos = Math.max(longestStallNanos, stall);
          log.info("failover done route={} replayed={} stallMs={}", current.route(), replayed, stall / 1_000_000);
        }
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
        avoidPeer(e);
        switchRoute();
        replay = true;
      }
    }
  }

  /**
   * A tree round, with the same failover: the history is first compacted as the stages compact
   * their caches (the accepted path moved down after {@code keep}), and a replay runs the whole
   * compacted history as a chain with the tree on top. The history then holds every tree node, as
   * the caches do, until the next round names the path to keep.
   */
  @Override
  public TargetScores runTree(int keep, int[] keepRows, int[] tokens, int[] parents, int rows, boolean sample,
      long seed) {
    if (keep + keepRows.length > valid || (keepRows.length > 0 && keepRows[keepRows.length - 1] >= valid)) {
      throw new IllegalArgumentException("keep " + keep + " and rows " + Arrays.toString(keepRows) + " are beyond the "
          + valid + " positions sent");
    }
    int[] kept = Arrays.copyOf(history, keep + keepRows.length);
    for (int j = 0; j < keepRows.length; j++) {
      kept[keep + j] = history[keepRows[j]];
    }
    return withFailover(kept.length + tokens.length, replay -> {
      TargetScores s = replay
          ? current.runTree(0, new int[0], concat(kept, tokens), onTop(kept.length, parents), rows, sample, seed)
          : current.runTree(keep, keepRows, tokens, parents, rows, sample, seed);
      remember(0, kept);
      remember(kept.length, tokens);
      lastParents = parents;
      lastTreeAt = kept.length;
      return spotCheck > 0 && random.nextDouble() < spotCheck ? check(s, new int[0], rows) : s;
    });
  }

  @Override
  public boolean runsTrees() {
    return true;
  }

  /** Parents of a replay: a chain of {@code prefix} positions, then the tree hung on its last one. */
  static int[] onTop(int prefix, int[] parents) {
    int[] out = dev.dsd.pipeline.runtime.TreeShape.chain(prefix + parents.length);
    for (int i = 0; i < parents.length; i++) {
      out[prefix + i] = parents[i] == dev.dsd.pipeline.runtime.TreeShape.ROOT ? prefix - 1 : prefix + parents[i];
    }
    return out;
  }

  @Override
  public long send(int keep, int[] tokens, int[] drafts, int rows) {
    if (keep > valid) {
      throw new IllegalArgumentException("keep " + keep + " is beyond the " + valid + " positions sent");
    }
    long inner;
    try {
      inner = current.send(keep, tokens, drafts, rows);
    } catch (PipelineException e) {
      inner = -1; // the route is broken: the await of this round (or an earlier one) fails over
    }
    remember(keep, tokens);
    lastParents = null;
    long h = ++handles;
    inFlight.put(h, new Sent(keep, tokens.clone(), drafts.clone(), rows, inner));
    return h;
  }

  @Override
  public TargetScores await(long h) {
    Sent s = inFlight.get(h);
    if (s == null) {
      throw new IllegalArgumentException("round " + h + " was not sent, was cancelled or was awaited already");
    }
    inFlight.headMap(h).clear(); // earlier rounds not awaited: their answers are not wanted
    long failedAt = 0;
    for (int attempt = 0; ; attempt++) {
      try {
        if (s.inner() < 0) {
          throw new PipelineException("STAGE_FAILED", "the round could not be sent", null);
        }
        TargetScores scores = current.await(s.inner());
        if (failedAt != 0) {
          long stall = System.nanoTime() - failedAt;
          longestStallNanos = Math.max(longestStallNanos, stall);
          log.info("failover done route={} replayed={} inFlight={} stallMs={}", current.route(),
              s.keep() + s.tokens().length, inFlight.size() - 1, stall / 1_000_000);
        }
        inFlight.remove(h);
        lastAwaited = h;
        lastAwaitedInner = s.inner();
        if (spotCheck > 0 && random.nextDouble() < spotCheck) {
          int upTo = s.keep() + s.tokens().length;
          return check(scores, s.drafts(), s.rows(), upTo, () -> resendInFlight(upTo));
        }
        return scores;
      } catch (PipelineException e) {
        if (attempt >= MAX_FAILOVERS) {
          throw new PipelineException(e.code(), "gave up after " + failovers + " failovers: " + e.getMessage(),
              e.failedPeer());
        }
        if (failedAt == 0) {
          failedAt = System.nanoTime();
        }
        failovers++;
        avoidPeer(e);
        switchRoute();
        s = replayFrom(h, s);
      }
    }
  }

  /** The awaited round {@code h} again on the fresh route, its history first; then the rounds after it. */
  private Sent replayFrom(long h, Sent s) {
    long inner;
    try {
      inner = current.send(0, concat(Arrays.copyOf(history, s.keep()), s.tokens()), s.drafts(), s.rows());
    } catch (PipelineException e) {
      inner = -1;
    }
    Sent again = s.on(inner);
    inFlight.put(h, again);
    for (var later : inFlight.tailMap(h, false).entrySet()) {
      Sent r = later.getValue();
      long i;
      try {
        i = current.send(r.keep(), r.tokens(), r.drafts(), r.rows());
      } catch (PipelineException e) {
        i = -1;
      }
      later.setValue(r.on(i));
    }
    return again;
  }

  /** After a spot check moved the session: the history up to the checked round is replayed, then the rounds in flight. */
  private void resendInFlight(int upTo) {
    try {
      lastAwaitedInner = current.send(0, Arrays.copyOf(history, upTo), new int[0], 1);
    } catch (PipelineException e) {
      lastAwaitedInner = -1;
    }
    for (var later : inFlight.entrySet()) {
      Sent r = later.getValue();
      long i;
      try {
        i = current.send(r.keep(), r.tokens(), r.drafts(), r.rows());
      } catch (PipelineException e) {
        i = -1;
      }
      later.setValue(r.on(i));
    }
  }

  @Override
  public void cancel(long afterRound, int keep) {
    if (afterRound != lastAwaited) {
      throw new IllegalArgumentException("a cancel follows the last awaited round " + lastAwaited + ", not "
          + afterRound);
    }
    if (keep > valid) {
      throw new IllegalArgumentException("keep " + keep + " is beyond the " + valid + " positions sent");
    }
    inFlight.clear(); // every round in flight was sent after the awaited one
    valid = keep;
    if (lastAwaitedInner >= 0) {
      try {
        current.cancel(lastAwaitedInner, keep);
      } catch (PipelineException e) {
        // the route is broken: the next await fails over, replaying only what stands
      }
    }
  }

  @Override
  public long lastBottleneckNanos() {
    return current.lastBottleneckNanos();
  }

  @Override
  public long lastAnswerNanos() {
    return current.lastAnswerNanos();
  }

  @Override
  public long lastQueueNanos() {
    return current.lastQueueNanos();
  }

  @Override
  public int lastBatchRows() {
    return current.lastBatchRows();
  }

  /** Re-runs the round with one stage on a replica; returns the answer the majority gives. */
  private TargetScores check(TargetScores mine, int[] drafts, int rows) {
    return check(mine, drafts, rows, valid, this::replayOntoCurrent);
  }

  /**
   * The same for the round whose positions end at {@code upTo}; {@code moved} rebuilds the current
   * route's caches when the check moved the session off a liar.
   */
  private TargetScores check(TargetScores mine, int[] drafts, int rows, int upTo, Runnable moved) {
    Route route = current.routeTaken();
    List<Integer> candidates = new ArrayList<>();
    for (int i = 0; i < route.stages().size(); i++) {
      candidates.add(i);
    }
    while (!candidates.isEmpty()) {
      int index = candidates.remove(random.nextInt(candidates.size()));
      Route.Stage suspect = route.stages().get(index);
      Set<PeerId> exclude = new HashSet<>(avoid);
      exclude.add(suspect.peer());
      Route.Stage first = routes.replica(route, index, exclude);
      if (first == null) {
        continue; // no replica of this range: check another stage
      }
      checks++;
      TargetScores other = runOn(route, index, first, drafts, rows, upTo);
      if (other == null || agree(mine, other, drafts)) {
        return mine;
      }
      exclude.add(first.peer());
      Route.Stage second = routes.replica(route, index, exclude);
      TargetScores third = second == null ? null : runOn(route, index, second, drafts, rows, upTo);
      if (third == null) {
        log.warn("spot check mismatch layers=[{},{}) peers {} and {} disagree, no third replica to decide",
            suspect.from(), suspect.to(), suspect.peer(), first.peer());
        return mine;
      }
      if (agree(mine, third, drafts)) {
        ban(first.peer(), suspect);
        return mine;
      }
      if (agree(other, third, drafts)) {
        ban(suspect.peer(), suspect);
        switchRoute(); // the next round replays onto a route without the liar
        moved.run();
        return other;
      }
      log.warn("spot check: three replicas of layers [{},{}) disagree", suspect.from(), suspect.to());
      return mine;
    }
    return mine;
  }

  private void ban(PeerId liar, Route.Stage where) {
    avoid.add(liar);
    routes.banned(liar);
    log.warn("spot check caught peer={} returning wrong activations for layers [{},{}): banned", liar, where.from(),
        where.to());
  }

  /** Runs the whole accepted history on {@code route} with stage {@code index} replaced. */
  private TargetScores runOn(Route route, int index, Route.Stage replacement, int[] drafts, int rows, int upTo) {
    List<Route.Stage> stages = new ArrayList<>(route.stages());
    stages.set(index, replacement);
    try (PipelineTargetPass shadow = opener.apply(new Route(route.modelId(), stages, 0, route.weights()))) {
      if (lastParents != null) { // the last round was a tree: the replica runs it as one too
        return shadow.runTree(0, new int[0], Arrays.copyOf(history, valid), onTop(lastTreeAt, lastParents), rows);
      }
      return shadow.run(0, Arrays.copyOf(history, upTo), drafts, rows);
    } catch (PipelineException e) {
      log.warn("spot check on {} failed: {}", replacement.peer(), e.getMessage());
      return null;
    }
  }

  static boolean agree(TargetScores a, TargetScores b, int[] drafts) {
    if (a.rows() != b.rows()) {
      return false;
    }
    for (int r = 0; r < a.rows(); r++) {
      if (a.argmax(r) != b.argmax(r)) {
        return false;
      }
      if (r < drafts.length && Math.abs(a.probability(r, drafts[r]) - b.probability(r, drafts[r]))
          > PROBABILITY_TOLERANCE) {
        return false;
      }
    }
    return true;
  }

  private void switchRoute() {
    bytesOfClosed += current.bytesSent();
    current.close();
    current = openAvoiding();
  }

  /**
   * Opens a session on the best route that avoids every failed peer. A peer can fail while the
   * session opens, too: a failure is seen by whichever stage notices it first, so the peer that
   * actually died may not be the one the failed round named and can still be in the next route.
   */
  private PipelineTargetPass openAvoiding() {
    PipelineException failed = null;
    for (int attempt = 0; ; attempt++) {
      Route route;
      try {
        route = routes.route(Set.copyOf(avoid), weights);
      } catch (NoRouteException e) {
        if (failed == null) {
          throw e;
        }
        // the peer that could not be opened is the news; that nothing replaces it comes second
        throw new PipelineException(failed.code(), failed.getMessage() + "; " + e.getMessage(), failed.failedPeer());
      }
      try {
        PipelineTargetPass opened = opener.apply(route);
        weights = route.weights();
        return opened;
      } catch (PipelineException e) {
        failed = e;
        if (attempt >= MAX_FAILOVERS) {
          throw new PipelineException(e.code(), "no route could be opened after " + (attempt + 1) + " tries: "
              + e.getMessage(), e.failedPeer());
        }
        avoidPeer(e);
      }
    }
  }

  private void avoidPeer(PipelineException e) {
    PeerId bad = e.failedPeer();
    if (bad != null) {
      avoid.add(bad);
      routes.failed(bad);
    }
    log.warn("stage failed code={} peer={} ({}); rerouting around {} peers", e.code(), bad, e.getMessage(),
        avoid.size());
  }

  /** Rebuilds the caches of a fresh route from the history (its answer is not needed). */
  private void replayOntoCurrent() {
    if (lastParents != null) {
      current.runTree(0, new int[0], Arrays.copyOf(history, valid), onTop(lastTreeAt, lastParents), 1);
      return;
    }
    current.run(0, Arrays.copyOf(history, valid), new int[0], 1);
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

  /** What each stage reported for the last round: compute and queue time, bytes sent on. */
  public List<dev.dsd.node.pipeline.proto.StageTiming> lastTimings() {
    return current.lastTimings();
  }

  @Override
  public long lastComputeNanos() {
    long micros = 0;
    for (var t : current.lastTimings()) {
      micros += t.getComputeMicros();
    }
    return micros * 1000;
  }

  public int failovers() {
    return failovers;
  }

  public int spotChecks() {
    return checks;
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
