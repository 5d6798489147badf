package dev.dsd.p2p.relay;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Reachability;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps an unreachable node reachable through relays: while {@link #reachability()} is
 * {@link Reachability.Status#PRIVATE} (AutoNAT's verdict, or the operator's) it reserves slots on
 * up to {@link #MAX_RESERVATIONS} relays it
 * learns of (any connected peer whose identify lists {@value RelayProtocol#HOP}: bootstrap peers,
 * DHT peers), renews each at {@link #RENEW_FRACTION} of its lifetime, and advertises
 * {@code RELAY/p2p-circuit} addresses through the host. A relay that refuses or disconnects is
 * dropped and another is tried. Listeners hear when the advertised addresses change, so the node
 * can push identify and re-announce.
 *
 * <p>When it follows AutoNAT, a node that a peer observes at an IP none of its interfaces has (it is
 * behind NAT) reserves at once, before AutoNAT's verdict: AutoNAT needs dial-backs to time out, which
 * takes seconds, and a stage should be routable within seconds of joining. PUBLIC releases the slots.
 */
public final class AutoRelay implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AutoRelay.class);
  public static final int MAX_RESERVATIONS = 2;
  /** Renew when this fraction of the reservation's lifetime has passed. */
  public static final double RENEW_FRACTION = 0.75;
  /** How long a relay that refused or failed is left alone. */
  public static final Duration RETRY_AFTER = Duration.ofSeconds(30);

  private final NettyHost host;
  private final RelayClient client;
  private final ScheduledExecutorService timer;
  private final Map<PeerId, RelayClient.Reservation> reservations = new ConcurrentHashMap<>();
  private final Set<PeerId> pending = ConcurrentHashMap.newKeySet();
  private final Set<PeerId> candidates = java.util.Collections.synchronizedSet(new LinkedHashSet<>());
  private final Map<PeerId, Long> failedUntil = new ConcurrentHashMap<>();
  private final List<Runnable> onChange = new CopyOnWriteArrayList<>();
  private volatile Reachability.Status reachability = Reachability.Status.UNKNOWN;
  // Behind NAT a node knows it long before AutoNAT's verdict, whose dial-backs must first time out:
  // a peer observes it at an IP that none of its listen addresses has. Following AutoNAT, it then
  // reserves at once, provisionally, so that it is routable within seconds of joining; AutoNAT's
  // PUBLIC (a forwarded port, a 1:1 NAT as in some clouds) releases the slots again.
  private volatile boolean natSeen;
  private volatile boolean following;

  public AutoRelay(NettyHost host, RelayClient client) {
    this.host = host;
    this.client = client;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "dsd-autorelay");
      t.setDaemon(true);
      return t;
    });
    host.addAddressSource(this::circuitAddrs);
    host.onIdentify(i -> {
      if (i.protocols().contains(RelayProtocol.HOP)) {
        candidates.add(i.peer());
        run(this::tick);
      }
    });
    host.onDisconnect(c -> run(() -> {
      if (!host.isConnected(c.remotePeer()) && reservations.remove(c.remotePeer()) != null) {
        log.info("relay reservation lost relay={} reason=disconnected", c.remotePeer());
        changed();
      }
      tick();
    }));
  }

  private void run(Runnable task) {
    if (!timer.isShutdown()) {
      try {
        timer.execute(task);
      } catch (java.util.concurrent.RejectedExecutionException closing) {
        // closed meanwhile: nothing left to keep
      }
    }
  }

  public Reachability.Status reachability() {
    return reachability;
  }

  /** Set by AutoNAT (or forced by the operator); PRIVATE starts reserving, anything else drops the reservations. */
  public void setReachability(Reachability.Status r) {
    Reachability.Status old = reachability;
    reachability = r;
    // behind NAT, outbound connections leave from the listen port so the NAT maps them as hole punching needs
    host.setDialFromListenPort(wantsRelay());
    host.addrs().setHideObserved(natSeen && r == Reachability.Status.UNKNOWN);
    if (old != r) {
      log.info("reachability {} -> {}", old, r);
      run(() -> {
        if (!wantsRelay() && !reservations.isEmpty()) {
          reservations.clear();
          changed();
        }
        tick();
      });
    }
  }

  /**
   * Follows AutoNAT's verdict from now on ({@link NettyHost#onReachability}), starting from the
   * host's current one: the node reserves relay slots exactly while AutoNAT finds it unreachable.
   */
  public AutoRelay followReachability() {
    following = true;
    host.onIdentify(i -> onObserved(i.observedAddr()));
    host.onReachability(r -> setReachability(r.status()));
    setReachability(host.reachability().status());
    return this;
  }

  /** Called (on the relay timer thread) whenever the advertised relay addresses change. */
  public void onAddressesChanged(Runnable listener) {
    onChange.add(listener);
  }

  public Map<PeerId, RelayClient.Reservation> reservations() {
    return Map.copyOf(reservations);
  }

  /** Our relay addresses: {@code <relay addr>/p2p/RELAY/p2p-circuit} for each live reservation. */
  public List<Multiaddr> circuitAddrs() {
    List<Multiaddr> out = new ArrayList<>();
    for (RelayClient.Reservation r : reservations.values()) {
      for (Multiaddr a : relayAddrs(r)) {
        Multiaddr c = Multiaddr.circuit(a);
        if (!out.contains(c)) {
          out.add(c);
        }
      }
    }
    return out;
  }

  /** The address we dialed the relay at comes first: others can likely reach it the same way. */
  private List<Multiaddr> relayAddrs(RelayClient.Reservation r) {
    List<Multiaddr> out = new ArrayList<>();
    for (Connection c : host.connections()) {
      if (c.remotePeer().equals(r.relay()) && c.outbound() && !c.relayed()) {
        out.add(c.remoteAddr().withPeer(r.relay()));
      }
    }
    for (Multiaddr a : r.relayAddrs()) {
      if (!out.contains(a) && !isLoopback(a)) {
        out.add(a);
      }
    }
    return out;
  }

  private static boolean isLoopback(Multiaddr a) {
    String s = a.toString();
    return s.startsWith("/ip4/127.") || s.startsWith("/ip6/::1/");
  }

  /** Whether this node should hold relay slots now: found unreachable, or seen behind NAT with no verdict yet. */
  public boolean wantsRelay() {
    Reachability.Status r = reachability;
    return r == Reachability.Status.PRIVATE || (r == Reachability.Status.UNKNOWN && natSeen);
  }

  /** Whether a peer has observed us at an IP none of our listen addresses has (see {@code natSeen}). */
  public boolean natSeen() {
    return natSeen;
  }

  /** identify's observedAddr from one peer: an IP that is not ours means address translation. */
  void onObserved(Multiaddr observed) {
    if (!following || natSeen || observed == null || observed.isCircuit()) {
      return;
    }
    InetAddress seen = ip(observed);
    if (seen == null || seen.isLoopbackAddress() || isOwn(seen)) {
      return;
    }
    natSeen = true;
    log.info("nat seen observed={} listen={}: reserving relay slots before AutoNAT's verdict (now {})", observed,
        host.listenAddrs(), reachability);
    host.setDialFromListenPort(wantsRelay());
    host.addrs().setHideObserved(reachability == Reachability.Status.UNKNOWN);
    run(this::tick);
  }

  /** One of our listen addresses, or of this machine's interfaces (a multi-homed host's other side). */
  private boolean isOwn(InetAddress ip) {
    if (host.listenAddrs().stream().map(AutoRelay::ip).anyMatch(ip::equals)) {
      return true;
    }
    try {
      return NetworkInterface.getByInetAddress(ip) != null;
    } catch (SocketException e) {
      return true; // cannot tell: claim nothing
    }
  }

  private static InetAddress ip(Multiaddr a) {
    try {
      String h = a.toInetSocketAddress().getHostString();
      return h.matches("[0-9.]+") || h.contains(":") ? InetAddress.getByName(h) : null;
    } catch (IllegalArgumentException | UnknownHostException e) {
      return null;
    }
  }

  private void tick() {
    if (!wantsRelay()) {
      return;
    }
    long now = System.nanoTime();
    List<PeerId> list;
    synchronized (candidates) {
      list = new ArrayList<>(candidates);
    }
    for (PeerId relay : list) {
      if (reservations.size() + pending.size() >= MAX_RESERVATIONS) {
        return;
      }
      Long until = failedUntil.get(relay);
      if (reservations.containsKey(relay) || pending.contains(relay) || (until != null && until - now > 0)
          || !host.isConnected(relay)) {
        continue;
      }
      reserve(relay);
    }
  }

  private void reserve(PeerId relay) {
    pending.add(relay);
    client.reserve(relay).whenComplete((r, e) -> run(() -> {
      pending.remove(relay);
      if (e != null || !wantsRelay()) {
        if (e != null) {
          log.info("relay reservation failed relay={} error={}", relay, e.getMessage());
          failedUntil.put(relay, System.nanoTime() + RETRY_AFTER.toNanos());
          if (reservations.remove(relay) != null) {
            changed();
          }
          if (!timer.isShutdown()) {
            timer.schedule(this::tick, RETRY_AFTER.toMillis(), TimeUnit.MILLISECONDS);
          }
        }
        tick();
        return;
      }
      boolean fresh = reservations.put(relay, r) == null;
      long lifetime = Math.max(1, r.expireUnixSeconds() - System.currentTimeMillis() / 1000);
      long renewMillis = Math.max(1000, (long) (lifetime * 1000 * RENEW_FRACTION));
      if (timer.isShutdown()) {
        return;
      }
      timer.schedule(() -> {
        if (reservations.containsKey(relay) && wantsRelay()) {
          reserve(relay);
        }
      }, renewMillis, TimeUnit.MILLISECONDS);
      log.info("relay reservation {} relay={} expiresIn={}s renewIn={}s limitBytes={} limitSeconds={} addrs={}",
          fresh ? "made" : "renewed", relay, lifetime, renewMillis / 1000, r.limitBytes(), r.limitSeconds(),
          circuitAddrs());
      if (fresh) {
        changed();
      }
    }));
  }

  private void changed() {
    onChange.forEach(l -> {
      try {
        l.run();
      } catch (RuntimeException e) {
        log.warn("relay address listener failed: {}", e.toString());
      }
    });
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
