package dev.dsd.node.routing;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.pipeline.model.WeightFormat;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumMap;
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
 * bounded by the triangle through the entry. Each weights format is routed on its own; a chain
 * never mixes formats.
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

  /** The fastest chain of any one weights format (see the five-argument form). */
  public Route route(String modelId, int layers, Collection<Candidate> candidates, Set<PeerId> avoid) {
    return route(modelId, layers, candidates, avoid, null);
  }

  /**
   * The fastest chain whose stages all keep their weights in one format: {@code weights}, or, when
   * null, whichever format's best chain is fastest (ties go to the more precise format). Formats are
   * never mixed: stages of different formats compute different numbers, and a session's output must
   * not depend on which peers served it.
   *
   * @throws NoRouteException naming the format asked for and where each format's coverage stops
   */
  public Route route(String modelId, int layers, Collection<Candidate> candidates, Set<PeerId> avoid,
      WeightFormat weights) {
    Map<WeightFormat, List<Candidate>> byFormat = new EnumMap<>(WeightFormat.class);
    for (Candidate c : candidates) {
      byFormat.computeIfAbsent(c.weights(), k -> new ArrayList<>()).add(c);
    }
    String model = modelId.substring(0, Math.min(12, modelId.length()));
    String avoiding = avoid.isEmpty() ? "" : " (avoiding " + avoid.size() + " failed peers)";
    if (weights != null && !byFormat.containsKey(weights)) {
      throw new NoRouteException("no peer serves model " + model + " in " + weights.id() + " weights"
          + (byFormat.isEmpty() ? "" : "; the swarm serves it in " + ids(byFormat.keySet())));
    }
    Route best = null;
    Map<WeightFormat, Integer> reached = new EnumMap<>(WeightFormat.class);
    for (var e : byFormat.entrySet()) {
      if (weights != null && e.getKey() != weights) {
        continue;
      }
      int[] gap = new int[1];
      Route r = chain(modelId, layers, e.getValue(), avoid, e.getKey(), gap, false);
      if (r == null) {
        // a peer that announced it is full may have freed a slot since; if it is the only cover,
        // asking it gives the user its own answer ("session limit") rather than "no chain"
        r = chain(modelId, layers, e.getValue(), avoid, e.getKey(), new int[1], true);
      }
      if (r == null) {
        reached.put(e.getKey(), gap[0]);
      } else if (best == null || r.expectedRoundMillis() < best.expectedRoundMillis()) {
        best = r;
      }
    }
    if (best != null) {
      return best;
    }
    if (reached.size() <= 1) {
      boolean named = weights != null || byFormat.size() > 1;
      WeightFormat only = reached.isEmpty() ? WeightFormat.F32 : reached.keySet().iterator().next();
      throw new NoRouteException("no chain of peers covers layers [0, " + layers + ") of model " + model
          + (named ? " in " + only.id() + " weights" : "") + ": nothing serves layer "
          + reached.getOrDefault(only, 0) + " onwards" + avoiding);
    }
    StringBuilder stops = new StringBuilder();
    reached.forEach((f, at) -> stops.append(stops.length() == 0 ? "" : ", ").append(f.id()).append(" peers serve nothing "
        + "from layer ").append(at).append(" onwards"));
    throw new NoRouteException("no chain of peers in one weights format covers layers [0, " + layers + ") of model "
        + model + ": " + stops + avoiding);
  }

  private static String ids(Collection<WeightFormat> formats) {
    return String.join(", ", formats.stream().map(WeightFormat::id).toList());
  }

  /** Shortest path over one format's candidates; null (with {@code gap[0]} the first uncovered layer) if none. */
  private Route chain(String modelId, int layers, List<Candidate> candidates, Set<PeerId> avoid, WeightFormat weights,
      int[] gap, boolean includeFull) {
    Map<Integer, List<Candidate>> byStart = new HashMap<>();
    for (Candidate c : candidates) {
      if (!avoid.contains(c.peer()) && (includeFull || !c.full()) && c.from() >= 0 && c.to() <= layers && c.from() < c.to()) {
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
        return new Route(modelId, stages, s.cost / 1000.0, weights);
      }
      for (Candidate c : byStart.getOrDefault(s.boundary, List.of())) {
        double cost = s.cost + link(s.last == null ? null : s.last.peer(), c.peer()) + compute(c);
        queue.add(new State(c.to(), c, cost, s));
      }
    }
    gap[0] = reached;
    return null;
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
