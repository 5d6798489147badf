package dev.dsd.node.routing;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.List;

/**
 * A peer serving layers {@code [from, to)} of a model, as the swarm view last saw it.
 *
 * @param computeMicros median compute of one verification round on this stage, 0 if unknown
 */
public record Candidate(PeerId peer, List<Multiaddr> addrs, int from, int to, int computeMicros, int sessions,
    int maxSessions) {
  public Candidate {
    addrs = List.copyOf(addrs);
  }

  public boolean full() {
    return maxSessions > 0 && sessions >= maxSessions;
  }

  Route.Stage stage() {
    return new Route.Stage(peer, addrs, from, to);
  }
}
