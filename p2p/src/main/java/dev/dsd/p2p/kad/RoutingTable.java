package dev.dsd.p2p.kad;

import dev.dsd.p2p.core.PeerId;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Predicate;

/**
 * Kademlia k-buckets around this node's key: bucket i holds peers whose key shares exactly i
 * leading bits with ours, least recently seen first, at most {@link #K} each. When a bucket is full,
 * a newcomer replaces the least recently seen peer only if that one is no longer alive (the
 * liveness check is the caller's: an open connection or an answered ping).
 */
public final class RoutingTable {
  public static final int K = 20;

  private final KadKey self;
  private final List<ArrayDeque<PeerId>> buckets = new ArrayList<>();

  public RoutingTable(PeerId self) {
    this.self = KadKey.of(self.toBytes());
    for (int i = 0; i <= 256; i++) {
      buckets.add(new ArrayDeque<>());
    }
  }

  /**
   * Adds or refreshes a peer. Returns true if it is in the table afterwards. {@code alive} tells
   * whether an existing peer may keep its place when the bucket is full.
   */
  public synchronized boolean add(PeerId peer, Predicate<PeerId> alive) {
    KadKey k = KadKey.of(peer.toBytes());
    if (k.equals(self)) {
      return false;
    }
    ArrayDeque<PeerId> b = buckets.get(self.commonPrefixLength(k));
    if (b.remove(peer)) {
      b.addLast(peer);
      return true;
    }
    if (b.size() < K) {
      b.addLast(peer);
      return true;
    }
    PeerId oldest = b.peekFirst();
    if (!alive.test(oldest)) {
      b.pollFirst();
      b.addLast(peer);
      return true;
    }
    return false;
  }

  public synchronized void remove(PeerId peer) {
    buckets.get(self.commonPrefixLength(KadKey.of(peer.toBytes()))).remove(peer);
  }

  public synchronized boolean contains(PeerId peer) {
    return buckets.get(self.commonPrefixLength(KadKey.of(peer.toBytes()))).contains(peer);
  }

  public synchronized int size() {
    return buckets.stream().mapToInt(ArrayDeque::size).sum();
  }

  /** The {@code n} known peers closest to {@code key}, closest first. */
  public synchronized List<PeerId> closest(KadKey key, int n) {
    List<PeerId> all = new ArrayList<>();
    buckets.forEach(all::addAll);
    all.sort(Comparator.comparing((PeerId p) -> KadKey.of(p.toBytes()), key::compareDistance));
    return List.copyOf(all.subList(0, Math.min(n, all.size())));
  }

  public synchronized List<PeerId> all() {
    List<PeerId> all = new ArrayList<>();
    buckets.forEach(all::addAll);
    return all;
  }
}
