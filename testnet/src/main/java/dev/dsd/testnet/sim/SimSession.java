package dev.dsd.testnet.sim;

import dev.dsd.verification.window.WindowPolicy;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * One simulated generation, round by round as {@code SpeculativeLoop} runs it: the window policy
 * picks k, the drafter proposes, the route verifies {@code [pending, d1..dk]} stage after stage,
 * the trace says how many drafts stand. A stage that left makes the session wait
 * {@code failoverMs}, take a new route and replay its context on the stages new to it.
 */
final class SimSession {
  private final Simulator sim;
  final int id;
  private final SimPeer entry;
  private final int entryIndex;
  final AcceptanceTrace.Prompt prompt;
  final double arrival;
  double started;
  int goal;
  int produced;
  int rounds;
  long drafted;
  long accepted;
  int failovers;
  private List<SimPeer> route;
  private final Set<SimPeer> holders = new HashSet<>(); // stages that cache this session's context
  private WindowPolicy window;
  private String routeKey;
  private SimPeer draftPeer;
  private int epoch; // bumped on failover: callbacks of the abandoned attempt see a stale epoch and stop
  private int k;
  private double roundStart;
  private double draftMs;
  private double verifyStart;
  private double computeMs;

  SimSession(Simulator sim, int id, int entryIndex, AcceptanceTrace.Prompt prompt, double arrival) {
    this.sim = sim;
    this.id = id;
    this.entryIndex = entryIndex;
    this.entry = sim.entryPeers.get(entryIndex);
    this.prompt = prompt;
    this.arrival = arrival;
  }

  void start() {
    started = sim.events.now();
    goal = Math.min(sim.c.maxTokens(), prompt.tokens());
    routeOrWait(() -> {
      routeKey = route.toString();
      window = sim.window(entryIndex, routeKey);
      openDraft(this::nextRound);
    });
  }

  private void routeOrWait(Runnable then) {
    if (!tryRoute(then)) {
      sim.waitForRoute(this, then);
    }
  }

  /** Takes a route and goes on if one has room; false when none has. */
  boolean tryRoute(Runnable then) {
    route = sim.route(entryIndex);
    if (route == null) {
      return false;
    }
    for (SimPeer p : route) {
      p.sessions++;
    }
    then.run();
    return true;
  }

  private void openDraft(Runnable then) {
    if (sim.c.spec() == 0) {
      then.run(); // --spec off: the entry makes no drafter at all
      return;
    }
    switch (sim.c.drafting()) {
      case "node" -> {
        draftPeer = sim.leastLoadedDraft();
        draftPeer.sessions++;
        sim.events.after(sim.c.draftOpenMs(), () -> sim.send(entry, draftPeer, prompt.promptTokens() * 4 + Simulator.MESSAGE_OVERHEAD_BYTES,
            () -> draftPeer.server.submit(job(prompt.promptTokens(), 0,
                () -> sim.send(draftPeer, entry, Simulator.MESSAGE_OVERHEAD_BYTES, then)))));
      }
      case "entry" -> entry.server.submit(job(prompt.promptTokens(), 0, then));
      default -> then.run();
    }
  }

  private void nextRound() {
    if (produced >= goal) {
      finish();
      return;
    }
    int room = goal - produced - 1;
    k = sim.c.drafting().equals("none") ? 0 : Math.max(0, Math.min(window.next(), room));
    roundStart = sim.events.now();
    Runnable drafted = () -> {
      draftMs = sim.events.now() - roundStart;
      verify();
    };
    if (k == 0) {
      draftMs = 0;
      verify();
      return;
    }
    int draftBytes = k * (sampled() ? Simulator.SAMPLED_BYTES_PER_POSITION : 4) + Simulator.MESSAGE_OVERHEAD_BYTES;
    switch (sim.c.drafting()) {
      case "node" -> sim.send(entry, draftPeer, Simulator.MESSAGE_OVERHEAD_BYTES, () -> draftPeer.server.submit(
          job(1, k, () -> sim.send(draftPeer, entry, draftBytes, drafted))));
      case "entry" -> entry.server.submit(job(1, k, drafted));
      default -> sim.events.after(0.02, drafted); // prompt lookup: an n-gram index probe
    }
  }

  private boolean sampled() {
    return sim.trace.temperature() > 0;
  }

  private void verify() {
    verifyStart = sim.events.now();
    computeMs = 0;
    hop(0, ++epoch);
  }

  private void hop(int i, int e) {
    SimPeer from = i == 0 ? entry : route.get(i - 1);
    SimPeer p = route.get(i);
    int tokens = holders.contains(p) ? 1 + k : prompt.promptTokens() + produced + k;
    int bytes = (i == 0 ? tokens * 4 : sim.target.hidden() * 2 * tokens) + Simulator.MESSAGE_OVERHEAD_BYTES;
    sim.send(from, p, bytes, () -> {
      if (e != epoch) {
        return;
      }
      if (!p.alive) {
        fail();
        return;
      }
      p.server.submit(new BatchServer.Job() {
        @Override
        public int tokens() {
          return tokens;
        }

        @Override
        public void done(double ms, int rows) {
          if (e != epoch) {
            return;
          }
          computeMs += ms;
          holders.add(p);
          if (i + 1 < route.size()) {
            hop(i + 1, e);
          } else {
            back(e);
          }
        }

        @Override
        public void lost() {
          if (e == epoch) {
            fail();
          }
        }
      });
    });
  }

  private void back(int e) {
    SimPeer last = route.get(route.size() - 1);
    int bytes = (k + 1) * (sampled() ? Simulator.SAMPLED_BYTES_PER_POSITION : 8) + Simulator.MESSAGE_OVERHEAD_BYTES;
    sim.send(last, entry, bytes, () -> {
      if (e == epoch) {
        sim.events.after(sim.c.roundMs(), this::decide);
      }
    });
  }

  private void decide() {
    double verifyMs = sim.events.now() - verifyStart;
    int a = Math.min(k, prompt.accepted(produced, k, rounds, sim.rng));
    produced = Math.min(goal, produced + a + 1);
    rounds++;
    drafted += k;
    accepted += a;
    window.observe(k, a, (long) (draftMs * 1e6), (long) (verifyMs * 1e6), (long) (Math.max(0, verifyMs - computeMs) * 1e6));
    nextRound();
  }

  private void fail() {
    epoch++;
    failovers++;
    sim.events.after(sim.c.failoverMs(), () -> {
      release();
      routeOrWait(this::verify);
    });
  }

  private void release() {
    for (SimPeer p : route) {
      p.sessions--;
    }
    sim.routesFreed();
  }

  private void finish() {
    sim.windowDone(entryIndex, routeKey, window);
    release();
    if (draftPeer != null) {
      draftPeer.sessions--;
    }
    sim.sessionDone(this);
  }

  private BatchServer.Job job(int tokens, int steps, Runnable then) {
    return new BatchServer.Job() {
      @Override
      public int tokens() {
        return tokens;
      }

      @Override
      public int steps() {
        return steps;
      }

      @Override
      public void done(double ms, int rows) {
        then.run();
      }

      @Override
      public void lost() {
        throw new IllegalStateException("draft servers do not leave in this model");
      }
    };
  }
}
