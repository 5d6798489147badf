package dev.dsd.node.routing;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.model.WeightFormat;
import java.util.List;
import java.util.Objects;

/**
 * A peer serving layers {@code [from, to)} of a model, as the swarm view last saw it.
 *
 * @param computeMicros median compute of one verification round on this stage, 0 if unknown
 * @param weights the format the stage keeps its weights in; a route never mixes formats
 */
public record Candidate(PeerId peer, List<Multiaddr> addrs, int from, int to, int computeMicros, int sessions,
    int maxSessions, WeightFormat weights) {
  public Candidate {
    addrs = List.copyOf(addrs);
    Objects.requireNonNull(weights, "weights");
  }

  /** An f32 stage. */
  public Candidate(PeerId peer, List<Multiaddr> addrs, int from, int to, int computeMicros, int sessions,
      int maxSessions) {
    this(peer, addrs, from, to, computeMicros, sessions, maxSessions, WeightFormat.F32);
  }

  public boolean full() {
    return maxSessions > 0 && sessions >= maxSessions;
  }

  Route.Stage stage() {
    return new Route.Stage(peer, addrs, from, to);
  }
}
