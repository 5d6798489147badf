package dev.dsd.p2p.host;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** What this node knows of other peers: addresses and protocols, bounded per peer. */
public final class PeerStore {
  public static final int MAX_ADDRS_PER_PEER = 32;
  public static final int MAX_PROTOCOLS_PER_PEER = 128;

  private final Map<PeerId, Set<Multiaddr>> addrs = new ConcurrentHashMap<>();
  private final Map<PeerId, List<String>> protocols = new ConcurrentHashMap<>();

  public void addAddrs(PeerId peer, List<Multiaddr> list) {
    Set<Multiaddr> set = addrs.computeIfAbsent(peer, p -> new LinkedHashSet<>());
    synchronized (set) {
      for (Multiaddr a : list) {
        if (set.size() >= MAX_ADDRS_PER_PEER) {
          break;
        }
        set.add(a.withoutPeer());
      }
    }
  }

  public List<Multiaddr> addrs(PeerId peer) {
    Set<Multiaddr> set = addrs.get(peer);
    if (set == null) {
      return List.of();
    }
    synchronized (set) {
      return List.copyOf(set);
    }
  }

  public void setProtocols(PeerId peer, List<String> list) {
    protocols.put(peer, List.copyOf(list.subList(0, Math.min(list.size(), MAX_PROTOCOLS_PER_PEER))));
  }

  public List<String> protocols(PeerId peer) {
    return protocols.getOrDefault(peer, List.of());
  }

  public Set<PeerId> peers() {
    return Set.copyOf(addrs.keySet());
  }
}
