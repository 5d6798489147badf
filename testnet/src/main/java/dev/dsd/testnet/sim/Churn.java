package dev.dsd.testnet.sim;

import java.util.ArrayList;
import java.util.List;

/**
 * Peers leaving and joining: target peers leave as a Poisson process at {@code churnPerHour} of
 * the live ones per hour, and each is replaced by a new peer on the same layers {@code rejoinMs}
 * later, so the swarm's size holds steady while sessions fail over.
 */
final class Churn {
  private final Simulator sim;

  Churn(Simulator sim) {
    this.sim = sim;
  }

  void start() {
    scheduleNext();
  }

  private void scheduleNext() {
    List<SimPeer> alive = new ArrayList<>();
    for (SimPeer p : sim.stagePeers) {
      if (p.alive) {
        alive.add(p);
      }
    }
    if (alive.isEmpty()) {
      return;
    }
    double perMs = sim.c.churnPerHour() * alive.size() / 3_600_000.0;
    sim.events.after(-Math.log(1 - sim.rng.nextDouble()) / perMs, () -> {
      if (sim.done()) {
        return;
      }
      List<SimPeer> live = sim.stagePeers.stream().filter(p -> p.alive).toList();
      SimPeer p = live.get(sim.rng.nextInt(live.size()));
      p.alive = false;
      p.server.leave();
      sim.metrics.leaves++;
      int stage = Metrics.stageOf(sim, p);
      sim.events.after(sim.c.rejoinMs(), () -> {
        if (!sim.done()) {
          sim.addStage(stage);
        }
      });
      scheduleNext();
    });
  }
}
