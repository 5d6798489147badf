package dev.dsd.node.routing;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.model.WeightFormat;
import java.util.List;
import java.util.Objects;

/**
 * A chain of peers that together run layers {@code [0, L)} of one model, in order, all keeping
 * their weights in one format (so the output does not depend on which peers served it).
 *
 * @param expectedRoundMillis what the router expects one round to take (links + compute), for logs
 * @param weights the format of every stage; sessions on the route ask each stage for it
 */
public record Route(String modelId, List<Stage> stages, double expectedRoundMillis, WeightFormat weights) {

  /** One peer running layers {@code [from, to)}, reachable at {@code addrs}. */
  public record Stage(PeerId peer, List<Multiaddr> addrs, int from, int to) {
    public Stage {
      addrs = List.copyOf(addrs);
    }

    @Override
    public String toString() {
      return peer.toBase58() + "[" + from + "," + to + ")";
    }
  }

  /** A route of f32 stages. */
  public Route(String modelId, List<Stage> stages, double expectedRoundMillis) {
    this(modelId, stages, expectedRoundMillis, WeightFormat.F32);
  }

  public Route {
    stages = List.copyOf(stages);
    Objects.requireNonNull(weights, "weights");
    if (stages.isEmpty()) {
      throw new IllegalArgumentException("a route needs at least one stage");
    }
  }

  public List<String> describe() {
    return stages.stream().map(Stage::toString).toList();
  }
}
