package dev.dsd.node.routing;

import dev.dsd.p2p.core.PeerId;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Picks the chain of peers covering layers {@code [0, L)} with the least expected time per round,
 * as Petals' client does: a shortest path over layer boundaries where a hop costs the one-way link
 * from the previous peer plus the stage's compute (scaled up by its load), and the path ends with
 * the link from the last stage back to the entry. Links the entry has not measured directly are
 * bounded by the triangle through the entry.
 */
public final class Router {
  /** Assumed one-way latency to a peer never measured: high enough that measured peers win. */
  public static final double UNKNOWN_LINK_MICROS = 50_000;
  /** Assumed compute per layer for a stage that has not reported any. */
  public static final double UNKNOWN_COMPUTE_MICROS_PER_LAYER = 1_000;

  private final Function<PeerId, Double> rttFromEntry;
  private final BiFunction<PeerId, PeerId, Double> rttBetween;

  /**
   * @param rttFromEntry measured round trip entry ↔ peer in microseconds, NaN if unknown
   * @param rttBetween round trip between two peers as one of them measured it, NaN if unknown
   */
  public Router(Function<PeerId, Double> rttFromEntry, BiFunction<PeerId, PeerId, Double> rttBetween) {
    this.rttFromEntry = rttFromEntry;
    this.rttBetween = rttBetween;
  }

  public Route route(String modelId, int layers, Collection<Candidate> candidates, Set<PeerId> avoid) {
    Map<Integer, List<Candidate>> byStart = new HashMap<>();
    for (Candidate c : candidates) {
      if (!avoid.contains(c.peer()) && !c.full() && c.from() >= 0 && c.to() <= layers && c.from() < c.to()) {
        byStart.computeIfAbsent(c.from(), k -> new ArrayList<>()).add(c);
      }
    }
    record State(int boundary, Candidate last, double cost, State prev) {}
    PriorityQueue<State> queue = new PriorityQueue<>((a, b) -> Double.compare(a.cost, b.cost));
    queue.add(new State(0, null, 0, null));
    // keyed by (boundary, peer) itself: a string key would base58-encode a peer id per queue pop,
    // which dominated routing among hundreds of candidates
    record Settled(int boundary, PeerId last) {}
    Set<Settled> settled = new HashSet<>();
    int reached = 0;
    while (!queue.isEmpty()) {
      State s = queue.poll();
      if (!settled.add(new Settled(s.boundary, s.last == null ? null : s.last.peer()))) {
        continue;
      }
      reached = Math.max(reached, s.boundary);
      if (s.boundary == layers) {
        if (s.last == null) {
          continue;
        }
        // the final leg back to the entry is part of the round: add it and let the queue order finish
        State done = new State(layers + 1, s.last, s.cost + link(s.last.peer(), null), s);
        queue.add(done);
        continue;
      }
      if (s.boundary == layers + 1) {
        List<Route.Stage> stages = new ArrayList<>();
        for (State p = s.prev; p != null && p.last != null; p = p.prev) {
          stages.add(0, p.last.stage());
        }
        return new Route(modelId, stages, s.cost / 1000.0);
      }
      for (Candidate c : byStart.getOrDefault(s.boundary, List.of())) {
        double cost = s.cost + link(s.last == null ? null : s.last.peer(), c.peer()) + compute(c);
        queue.add(new State(c.to(), c, cost, s));
      }
    }
    throw new NoRouteException("no chain of peers covers layers [0, " + layers + ") of model "
        + modelId.substring(0, Math.min(12, modelId.length())) + ": nothing serves layer " + reached
        + " onwards" + (avoid.isEmpty() ? "" : " (avoiding " + avoid.size() + " failed peers)"));
  }

  /** One-way time from {@code a} to {@code b}; null stands for the entry. */
  private double link(PeerId a, PeerId b) {
    if (a == null || b == null) {
      double rtt = rttFromEntry.apply(a == null ? b : a);
      return Double.isNaN(rtt) ? UNKNOWN_LINK_MICROS : rtt / 2;
    }
    double direct = rttBetween.apply(a, b);
    if (!Double.isNaN(direct)) {
      return direct / 2;
    }
    double ea = rttFromEntry.apply(a);
    double eb = rttFromEntry.apply(b);
    return Double.isNaN(ea) || Double.isNaN(eb) ? UNKNOWN_LINK_MICROS : (ea + eb) / 2;
  }

  private static double compute(Candidate c) {
    double base = c.computeMicros() > 0 ? c.computeMicros() : UNKNOWN_COMPUTE_MICROS_PER_LAYER * (c.to() - c.from());
    double load = c.maxSessions() > 0 ? (double) c.sessions() / c.maxSessions() : 0;
    return base * (1 + load);
  }
}
