package dev.dsd.node.routing;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.List;

/**
 * A chain of peers that together run layers {@code [0, L)} of one model, in order.
 *
 * @param expectedRoundMillis what the router expects one round to take (links + compute), for logs
 */
public record Route(String modelId, List<Stage> stages, double expectedRoundMillis) {

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

  public Route {
    stages = List.copyOf(stages);
    if (stages.isEmpty()) {
      throw new IllegalArgumentException("a route needs at least one stage");
    }
  }

  public List<String> describe() {
    return stages.stream().map(Stage::toString).toList();
  }
}
