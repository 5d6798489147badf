package dev.dsd.testnet.sim;

import dev.dsd.node.routing.Candidate;
import dev.dsd.node.routing.NoRouteException;
import dev.dsd.node.routing.Route;
import dev.dsd.node.routing.Router;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.verification.window.AdaptiveWindow;
import dev.dsd.verification.window.AcceptanceHazard;
import dev.dsd.verification.window.WindowMemory;
import dev.dsd.verification.window.WindowPolicy;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A discrete-event model of a dsd swarm: entries run speculative generations over pipelines of
 * stage peers, drafting on a draft node, on the entry or by prompt lookup, with the node's own
 * {@link Router} choosing routes and the node's own {@link WindowPolicy} choosing windows; the
 * target's acceptance replays an {@link AcceptanceTrace} recorded from the real models. Every
 * random draw comes from one seeded generator, so a configuration and seed give one answer.
 */
public final class Simulator {
  /** Largest window {@code auto} may choose, as the node's. */
  public static final int MAX_AUTO_WINDOW = 16;
  /** Bytes of one message's framing and headers. */
  static final int MESSAGE_OVERHEAD_BYTES = 96;
  /** Sampled verification returns a sparse distribution per position, about this many bytes. */
  static final int SAMPLED_BYTES_PER_POSITION = 1024;
  /**
   * Peers per layer range an entry's swarm view offers the router at once (a seeded random sample
   * when more serve the range): the router's search is quadratic in replicas per range, and a real
   * entry knows only the peers the DHT returned to it.
   */
  static final int VIEW_PER_RANGE = 16;
  /** How long an entry waits before asking the router again when no route has room and nothing frees one. */
  static final double NO_ROUTE_RETRY_MS = 1000;

  final SimConfig c;
  final ComputeProfile target;
  final ComputeProfile draft;
  final AcceptanceTrace trace;
  final EventQueue events = new EventQueue();
  final SplittableRandom rng;
  final List<SimPeer> stagePeers = new ArrayList<>();
  private final List<List<SimPeer>> byRange = new ArrayList<>();
  final List<SimPeer> draftPeers = new ArrayList<>();
  final List<SimPeer> entryPeers = new ArrayList<>();
  final Map<PeerId, SimPeer> byId = new HashMap<>();
  private final List<Router> routers = new ArrayList<>();
  private final List<WindowMemory> windows = new ArrayList<>();
  private final ArrayDeque<SimSession> waiting = new ArrayDeque<>();
  private record RouteWaiter(SimSession session, Runnable then) {}
  private final ArrayDeque<RouteWaiter> routeWaiters = new ArrayDeque<>();
  private boolean retryScheduled;
  final Metrics metrics;
  private int nextIndex;
  private int issued;
  private int running;
  int finished;

  public Simulator(SimConfig c, ComputeProfile target, ComputeProfile draft, AcceptanceTrace trace) {
    this(c, target, draft, trace, c.spec() == SimConfig.LEARNED ? AcceptanceHazard.shipped() : null);
  }

  /** With {@code hazard} as the learned controller's model when {@code c.spec()} is {@link SimConfig#LEARNED}. */
  public Simulator(SimConfig c, ComputeProfile target, ComputeProfile draft, AcceptanceTrace trace,
      AcceptanceHazard hazard) {
    this.c = c;
    this.target = target.layers() == c.layers() ? target : target.scaled(target.model(), c.layers(), target.hidden(), 1);
    this.draft = draft;
    this.trace = trace;
    this.rng = new SplittableRandom(c.seed());
    this.metrics = new Metrics(c.requests(), c.stages());
    for (int s = 0; s < c.stages(); s++) {
      for (int r = 0; r < c.replicas(); r++) {
        addStage(s);
      }
    }
    int draftNodes = c.drafting().equals("node") ? c.draftNodes() : 0;
    for (int i = 0; i < draftNodes; i++) {
      SimPeer p = newPeer(SimPeer.Role.DRAFT, 0, 0);
      p.server = new BatchServer(events, this::draftMillis, c.draftBatchRows(), Integer.MAX_VALUE);
      draftPeers.add(p);
    }
    for (int i = 0; i < c.entries(); i++) {
      SimPeer e = newPeer(SimPeer.Role.ENTRY, 0, 0);
      if (c.drafting().equals("entry")) {
        e.server = new BatchServer(events, batch -> draftMillis(batch) - c.draftCallMs(), c.draftBatchRows(),
            Integer.MAX_VALUE);
      }
      entryPeers.add(e);
      windows.add(new WindowMemory(0, MAX_AUTO_WINDOW, c.spec() == SimConfig.LEARNED ? hazard : null));
      routers.add(new Router(p -> rttMicros(e, byId.get(p)), (a, b) -> rttMicros(byId.get(a), byId.get(b))));
    }
  }

  private SimPeer newPeer(SimPeer.Role role, int from, int to) {
    double lat = c.latencyMaxMs() > c.latencyMs() ? c.latencyMs() + rng.nextDouble() * (c.latencyMaxMs()
        - c.latencyMs()) : c.latencyMs();
    SimPeer p = c.testnetLinks() ? new SimPeer(nextIndex++, role, from, to, lat, 0)
        : new SimPeer(nextIndex++, role, from, to, lat / 2, lat / 2);
    byId.put(p.id, p);
    return p;
  }

  SimPeer addStage(int s) {
    int from = c.layers() * s / c.stages();
    int to = c.layers() * (s + 1) / c.stages();
    SimPeer p = newPeer(SimPeer.Role.STAGE, from, to);
    while (byRange.size() <= s) {
      byRange.add(new ArrayList<>());
    }
    byRange.get(s).add(p);
    routesFreed();
    p.server = new BatchServer(events, batch -> {
      int tokens = 0;
      for (BatchServer.Job j : batch) {
        tokens += j.tokens();
      }
      return target.millis(c.weights(), p.layers(), batch.size(), tokens);
    }, c.batchRows(), c.batchTokens());
    stagePeers.add(p);
    return p;
  }

  /** A draft call: the prompts it caches in one pass, then one step per draft token, each over the rows still drafting. */
  private double draftMillis(List<BatchServer.Job> batch) {
    double ms = c.draftCallMs();
    int prefillTokens = 0;
    int prefillRows = 0;
    int maxSteps = 0;
    for (BatchServer.Job j : batch) {
      if (j.steps() == 0) {
        prefillTokens += j.tokens();
        prefillRows++;
      }
      maxSteps = Math.max(maxSteps, j.steps());
    }
    if (prefillRows > 0) {
      ms += draft.millis(c.weights(), draft.layers(), prefillRows, prefillTokens);
    }
    for (int s = 1; s <= maxSteps; s++) {
      int rows = 0;
      for (BatchServer.Job j : batch) {
        rows += j.steps() >= s ? 1 : 0;
      }
      ms += draft.millis(c.weights(), draft.layers(), rows, rows);
    }
    return ms;
  }

  double oneWay(SimPeer a, SimPeer b) {
    return a.outMs + b.inMs;
  }

  private double rttMicros(SimPeer a, SimPeer b) {
    return a == null || b == null ? Double.NaN : 1000 * (oneWay(a, b) + oneWay(b, a));
  }

  /** Delivers {@code bytes} from {@code a} to {@code b}, then runs {@code then} there. */
  void send(SimPeer a, SimPeer b, int bytes, Runnable then) {
    double delay = oneWay(a, b);
    if (c.jitterMs() > 0) {
      delay = Math.max(0, delay + (rng.nextDouble() * 2 - 1) * c.jitterMs());
    }
    events.at(b.deliver(events.now(), delay + c.hopMs(), bytes, c.bandwidthMbit()), then);
  }

  /** Routes a session from {@code entry} with the node's router; null when no chain has room now. */
  List<SimPeer> route(int entry) {
    List<Candidate> cands = new ArrayList<>();
    for (List<SimPeer> range : byRange) {
      range.removeIf(p -> !p.alive);
      int n = range.size();
      int take = Math.min(n, VIEW_PER_RANGE);
      int start = n <= VIEW_PER_RANGE ? 0 : rng.nextInt(n);
      for (int i = 0; i < take; i++) {
        SimPeer p = range.get((start + i * Math.max(1, n / take)) % n);
        int micros = (int) (1000 * target.millis(c.weights(), p.layers(), 1, 5));
        cands.add(new Candidate(p.id, List.of(), p.from, p.to, micros, p.sessions, c.maxSessions()));
      }
    }
    try {
      Route r = routers.get(entry).route("sim", c.layers(), cands, Set.of());
      List<SimPeer> out = new ArrayList<>(r.stages().size());
      for (Route.Stage s : r.stages()) {
        out.add(byId.get(s.peer()));
      }
      return out;
    } catch (NoRouteException e) {
      return null;
    }
  }

  /**
   * Parks a session that found no route with room. Sessions are woken oldest first when another
   * releases its stages or a peer joins, and by a slow timer in case neither happens (a range whose
   * peers all left): polling every waiter often would cost a router search each.
   */
  void waitForRoute(SimSession s, Runnable then) {
    routeWaiters.addLast(new RouteWaiter(s, then));
    scheduleRetry();
  }

  void routesFreed() {
    if (!routeWaiters.isEmpty()) {
      events.after(0, this::wakeWaiters);
    }
  }

  private void scheduleRetry() {
    if (!retryScheduled) {
      retryScheduled = true;
      events.after(NO_ROUTE_RETRY_MS, () -> {
        retryScheduled = false;
        wakeWaiters();
        if (!routeWaiters.isEmpty()) {
          scheduleRetry();
        }
      });
    }
  }

  private void wakeWaiters() {
    while (!routeWaiters.isEmpty()) {
      RouteWaiter w = routeWaiters.peekFirst();
      if (!w.session().tryRoute(w.then())) {
        return;
      }
      routeWaiters.pollFirst();
    }
  }

  SimPeer leastLoadedDraft() {
    SimPeer best = null;
    for (SimPeer p : draftPeers) {
      if (best == null || p.sessions < best.sessions) {
        best = p;
      }
    }
    return best;
  }

  /** As the node does: auto (and learned) continues from the estimates of the entry's last request on the same route. */
  WindowPolicy window(int entry, String routeKey) {
    return c.spec() < 0 ? windows.get(entry).start(routeKey) : WindowPolicy.fixed(c.spec());
  }

  void windowDone(int entry, String routeKey, WindowPolicy w) {
    if (w instanceof AdaptiveWindow a) {
      windows.get(entry).finish(routeKey, a);
    }
  }

  public SimResult run() {
    long t0 = System.nanoTime();
    java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
    long cpu0 = mx.getCurrentThreadCpuTime();
    if (c.arrivalRate() == 0) {
      for (int i = 0; i < Math.min(c.concurrency(), c.requests()); i++) {
        arrive();
      }
    } else {
      scheduleArrivals();
    }
    if (c.churnPerHour() > 0) {
      new Churn(this).start();
    }
    events.run(Double.POSITIVE_INFINITY);
    if (finished != c.requests()) {
      throw new IllegalStateException("simulation stopped with " + finished + " of " + c.requests() + " requests done");
    }
    return metrics.result(this, (System.nanoTime() - t0) / 1e9, (mx.getCurrentThreadCpuTime() - cpu0) / 1e9);
  }

  private void scheduleArrivals() {
    double meanGapMs = 1000.0 * c.burst() / c.arrivalRate();
    events.after(-meanGapMs * Math.log(1 - rng.nextDouble()), () -> {
      for (int i = 0; i < c.burst() && issued < c.requests(); i++) {
        arrive();
      }
      if (issued < c.requests()) {
        scheduleArrivals();
      }
    });
  }

  private void arrive() {
    int n = issued++;
    AcceptanceTrace.Prompt p = trace.prompts().get(n % trace.prompts().size());
    SimSession s = new SimSession(this, n, n % entryPeers.size(), p, events.now());
    if (running < c.concurrency() * entryPeers.size()) {
      running++;
      s.start();
    } else {
      waiting.addLast(s);
    }
  }

  void sessionDone(SimSession s) {
    finished++;
    metrics.record(s, events.now());
    running--;
    if (!waiting.isEmpty()) {
      running++;
      waiting.pollFirst().start();
    } else if (c.arrivalRate() == 0 && issued < c.requests()) {
      arrive();
    }
  }

  boolean done() {
    return finished >= c.requests();
  }
}
