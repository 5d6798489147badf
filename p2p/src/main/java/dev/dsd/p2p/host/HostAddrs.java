package dev.dsd.p2p.host;

import dev.dsd.p2p.multiaddr.AddrScope;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;

/**
 * The addresses this host tells others, and why: the configured announce addresses when there are
 * any, else the listen addresses plus the public addresses several peers observed us at
 * (identify's observedAddr), minus those AutoNAT servers failed to dial back. Each peer is told
 * only the addresses it could reach from where it is ({@link AddrScope}): a peer on the public
 * internet is never told our loopback or private addresses. Listeners hear every change, so the
 * host can push identify.
 */
public final class HostAddrs {
  private final List<Multiaddr> announce;
  private final List<Multiaddr> listen = new CopyOnWriteArrayList<>();
  private final Set<Multiaddr> observed = new LinkedHashSet<>();
  private final Set<Multiaddr> undialable = new LinkedHashSet<>();
  private boolean hideObserved;
  private final List<Runnable> listeners = new CopyOnWriteArrayList<>();
  // addresses we do not listen on ourselves: relay circuit addresses of live reservations
  private final List<Supplier<List<Multiaddr>>> sources = new CopyOnWriteArrayList<>();

  HostAddrs(List<Multiaddr> announce) {
    this.announce = List.copyOf(announce);
  }

  void addListen(Multiaddr a) {
    listen.add(a);
  }

  public List<Multiaddr> listen() {
    return List.copyOf(listen);
  }

  /** What we could be reached at, before AutoNAT's verdict: what AutoNAT asks servers to dial. */
  public synchronized List<Multiaddr> candidates() {
    if (!announce.isEmpty()) {
      return announce;
    }
    Set<Multiaddr> out = new LinkedHashSet<>(listen);
    out.addAll(observed);
    return List.copyOf(out);
  }

  /** Adds a source of addresses to advertise that AutoNAT does not test (relay circuit addresses). */
  void addSource(Supplier<List<Multiaddr>> source) {
    sources.add(source);
  }

  /** The candidates no AutoNAT server found undialable, then what the sources add. */
  public List<Multiaddr> advertised() {
    List<Multiaddr> out;
    synchronized (this) {
      out = new ArrayList<>(candidates());
      out.removeAll(undialable);
      if (hideObserved) {
        out.removeAll(observed);
      }
    }
    // outside the lock: a source may take its own
    sources.forEach(src -> src.get().stream().filter(a -> !out.contains(a)).forEach(out::add));
    return out;
  }

  /** What a peer at {@code viewer} scope is told: only addresses it could reach. */
  public List<Multiaddr> advertisedTo(AddrScope viewer) {
    return advertised().stream().filter(a -> AddrScope.of(a).reachableFrom(viewer)).toList();
  }

  /** Replaces the confirmed observed addresses; listeners run if they changed. */
  public void setObserved(Set<Multiaddr> addrs) {
    boolean changed;
    synchronized (this) {
      changed = !observed.equals(addrs);
      observed.clear();
      observed.addAll(addrs);
    }
    if (changed) {
      listeners.forEach(Runnable::run);
    }
  }

  public synchronized Set<Multiaddr> observed() {
    return Set.copyOf(observed);
  }

  /** Replaces the addresses AutoNAT servers could not dial; listeners run if they changed. */
  public void setUndialable(Set<Multiaddr> addrs) {
    boolean changed;
    synchronized (this) {
      changed = !undialable.equals(addrs);
      undialable.clear();
      undialable.addAll(addrs);
    }
    if (changed) {
      listeners.forEach(Runnable::run);
    }
  }

  /**
   * While on, the observed addresses are not advertised (AutoNAT still tests them). For a node seen
   * behind NAT before AutoNAT's verdict: its NAT's public address is almost surely undialable, and
   * peers' plain dials to it, leaving from their listen ports, would hold the very 4-tuple a hole
   * punch needs (and time out). AutoNAT's verdict decides afterwards.
   */
  public void setHideObserved(boolean on) {
    boolean changed;
    synchronized (this) {
      changed = hideObserved != on;
      hideObserved = on;
    }
    if (changed) {
      listeners.forEach(Runnable::run);
    }
  }

  public void onChange(Runnable listener) {
    listeners.add(listener);
  }
}
