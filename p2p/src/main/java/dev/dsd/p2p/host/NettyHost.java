package dev.dsd.p2p.host;

import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.identify.IdentifyProtocol;
import dev.dsd.p2p.identify.IdentifyService;
import dev.dsd.p2p.multiaddr.AddrScope;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.multistream.MultistreamHandler;
import dev.dsd.p2p.ping.PingProtocol;
import dev.dsd.p2p.pnet.ConnectionProtector;
import dev.dsd.p2p.pnet.PeerNotAllowedException;
import dev.dsd.p2p.yamux.YamuxStreamChannel;
import io.netty.channel.Channel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A libp2p host on Netty TCP (epoll when available). Every connection, dialed or accepted, is
 * upgraded by the same chain, the {@link Upgrader}:
 *
 * <pre>
 *   TCP → [pnet: nonces, XSalsa20] → multistream(/noise) → Noise XX → [allowPeers] → multistream(/yamux/1.0.0) → yamux
 *   each stream → multistream(application protocol) → the protocol's StreamHandler
 * </pre>
 *
 * The bracketed steps run only when configured: a swarm key puts the host in that private network
 * ({@link ConnectionProtector}), an allowlist drops authenticated peers that are not on it.
 * One connection per peer is kept and reused for all streams; it leaves the map when it closes,
 * when the remote sends GO_AWAY, or when a keepalive ping goes unanswered ({@link KeepAlive}), so
 * the next stream redials. Inbound handshakes are counted apart from established connections
 * ({@link HandshakeSlots}). Identify runs on every new connection and fills the {@link PeerStore};
 * ping and identify are served by default.
 *
 * <p>Other transports (a relayed connection: a stream of a relay carrying Noise and yamux) plug in
 * with {@link #upgrader()} on their own channel and {@link #register} for the result.
 */
public final class NettyHost implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NettyHost.class);

  private final Identity identity;
  private final HostConfig config;
  private final TcpTransport tcp;
  private final Map<String, StreamHandler> handlers = new ConcurrentHashMap<>();
  private final Map<PeerId, Connection> connections = new ConcurrentHashMap<>();
  private final Map<PeerId, CompletableFuture<Connection>> dialing = new ConcurrentHashMap<>();
  private final Map<PeerId, long[]> backoff = new ConcurrentHashMap<>(); // {failures, until nanos}
  private final HostAddrs addrs;
  private final List<Consumer<Connection>> onConnect = new CopyOnWriteArrayList<>();
  private final List<Consumer<Connection>> onDisconnect = new CopyOnWriteArrayList<>();
  private final List<Consumer<Reachability>> onReachability = new CopyOnWriteArrayList<>();
  private final AtomicInteger established = new AtomicInteger();
  private final PeerStore peerStore = new PeerStore();
  private final ConnectionProtector protector; // null: public network
  private final Upgrader upgrader;
  private final IdentifyService identify;
  private volatile Reachability reachability = Reachability.UNKNOWN;
  private volatile Function<PeerId, CompletableFuture<List<Multiaddr>>> routing;
  private volatile boolean started;
  // Relay hook (package relay): dialing /p2p-circuit addresses.
  private volatile BiFunction<Multiaddr, PeerId, CompletableFuture<Connection>> circuitDialer;
  private volatile boolean closing;

  public NettyHost(Identity identity, HostConfig config) {
    this.identity = identity;
    this.config = config;
    // Half the dial timeout: a remote that stays silent (a js-libp2p listener with another key
    // does) then fails with the private-network error rather than a bare dial timeout.
    this.protector = config.swarmKey() == null ? null
        : new ConnectionProtector(config.swarmKey(), config.dialTimeout().dividedBy(2));
    this.addrs = new HostAddrs(config.announce());
    this.upgrader = new Upgrader(identity, config, protector, this::acceptStream);
    this.tcp = new TcpTransport(config, upgrader, established::get, this::register);
    setStreamHandler(PingProtocol.ID, PingProtocol::respond);
    this.identify = new IdentifyService(this);
    addrs.onChange(identify::schedulePushAll);
  }

  /** Binds every listen address; port 0 picks a free port, reported by {@link #listenAddrs()}. */
  public NettyHost start() {
    if (protector != null) {
      log.info("private network: swarm key fingerprint {}", protector.key().fingerprint());
    }
    if (config.allowPeers() != null) {
      log.info("allowlist: {} peers may connect", config.allowPeers().size());
    }
    for (Multiaddr m : config.listen()) {
      for (Multiaddr l : tcp.listen(m)) {
        addrs.addListen(l);
        log.info("listening {}/p2p/{}", l, peerId());
      }
    }
    started = true;
    return this;
  }

  public PeerId peerId() {
    return identity.peerId();
  }

  public Identity identity() {
    return identity;
  }

  public HostConfig config() {
    return config;
  }

  public List<Multiaddr> listenAddrs() {
    return addrs.listen();
  }

  /**
   * Everything identify may tell others (before each peer's scope filter): the announce addresses
   * when configured, else the listen addresses plus confirmed observed ones, minus undialable ones.
   */
  public List<Multiaddr> advertisedAddrs() {
    return addrs.advertised();
  }

  /** The addresses a connected peer may be told: only those it can reach from where it is. */
  public List<Multiaddr> advertisedAddrsFor(PeerId peer) {
    Connection c = connections.get(peer);
    if (c == null) {
      return addrs.advertisedTo(AddrScope.PUBLIC);
    }
    // relayed: the address is the relay's (/p2p-circuit), and the peer reached that relay too
    return addrs.advertisedTo(AddrScope.of(c.remoteAddr()));
  }

  /** This host's addresses and where they came from. */
  public HostAddrs addrs() {
    return addrs;
  }

  /** Whether peers can dial us, as AutoNAT last concluded. */
  public Reachability reachability() {
    return reachability;
  }

  /** Set by AutoNAT; listeners (the DHT's mode, logs) hear each change. */
  public void setReachability(Reachability r) {
    Reachability prev = reachability;
    reachability = r;
    if (prev.status() != r.status()) {
      log.info("reachability {} -> {}", prev, r);
      onReachability.forEach(l -> l.accept(r));
    }
  }

  public void onReachability(Consumer<Reachability> listener) {
    onReachability.add(listener);
  }

  /** The connection upgrade, for transports that bring their own channel (a relay's stream). */
  public Upgrader upgrader() {
    return upgrader;
  }

  /** Runs {@code task} on one of the host's event loops after {@code millis}. */
  public void schedule(Runnable task, long millis) {
    tcp.group().next().schedule(task, millis, TimeUnit.MILLISECONDS);
  }

  /** Adds addresses to advertise that the host does not listen on itself (relay circuit addresses). */
  public void addAddressSource(Supplier<List<Multiaddr>> source) {
    addrs.addSource(source);
  }

  /** Dials /p2p-circuit addresses (installed by the relay client): (address, expected peer) to connection. */
  public void setCircuitDialer(BiFunction<Multiaddr, PeerId, CompletableFuture<Connection>> dialer) {
    this.circuitDialer = dialer;
  }

  public PeerStore peerStore() {
    return peerStore;
  }

  /** Serves {@code protocol}; once the host runs, connected peers are told by identify push. */
  public void setStreamHandler(String protocol, StreamHandler handler) {
    if (handlers.put(protocol, handler) == null && started) {
      identify.schedulePushAll();
    }
  }

  public void removeStreamHandler(String protocol) {
    if (handlers.remove(protocol) != null && started) {
      identify.schedulePushAll();
    }
  }

  public List<String> protocols() {
    return handlers.keySet().stream().sorted().toList();
  }

  /** Finds addresses of peers the store does not know (the DHT plugs in here). */
  public void setPeerRouting(Function<PeerId, CompletableFuture<List<Multiaddr>>> routing) {
    this.routing = routing;
  }

  public void onConnect(Consumer<Connection> listener) {
    onConnect.add(listener);
  }

  public void onDisconnect(Consumer<Connection> listener) {
    onDisconnect.add(listener);
  }

  /** Called with every identify answer (on connect, on request, on push). */
  public void onIdentify(Consumer<IdentifyProtocol.Info> listener) {
    identify.onIdentify(listener);
  }

  public List<Connection> connections() {
    return List.copyOf(connections.values());
  }

  /** TCP connections open now, both directions, upgraded or still upgrading. */
  public int openChannels() {
    return tcp.openChannels();
  }

  /** Inbound connections still in their handshake. */
  public int pendingHandshakes() {
    return tcp.pendingHandshakes();
  }

  /** Upgraded connections open now (the count {@link HostConfig#maxConnections} limits). */
  public int establishedConnections() {
    return established.get();
  }

  /** Dials {@code addr}; when it carries /p2p/ID (or {@code expected} is given) the remote must be that peer. */
  public CompletableFuture<Connection> connect(Multiaddr addr) {
    PeerId expected = addr.peerId();
    if (expected != null) {
      if (!config.allows(expected)) {
        return CompletableFuture.failedFuture(new PeerNotAllowedException(expected, config.allowPeers().size()));
      }
      Connection c = connections.get(expected);
      if (c != null && c.isOpen()) {
        return CompletableFuture.completedFuture(c);
      }
      peerStore.addAddrs(expected, List.of(addr));
    }
    return dial(addr.withoutPeer(), expected);
  }

  /** The open connection to a peer, or a new one dialed from the peer store or peer routing. */
  public CompletableFuture<Connection> connection(PeerId peer) {
    if (peer.equals(peerId())) {
      return CompletableFuture.failedFuture(new P2pException("cannot dial self"));
    }
    if (!config.allows(peer)) {
      return CompletableFuture.failedFuture(new PeerNotAllowedException(peer, config.allowPeers().size()));
    }
    Connection c = connections.get(peer);
    if (c != null && c.isOpen()) {
      return CompletableFuture.completedFuture(c);
    }
    long[] b = backoff.get(peer);
    if (b != null && System.nanoTime() < b[1]) {
      return CompletableFuture.failedFuture(new P2pException("peer " + peer + " is in dial back-off for "
          + TimeUnit.NANOSECONDS.toMillis(b[1] - System.nanoTime()) + " ms after " + b[0] + " failed dials"));
    }
    return dialing.computeIfAbsent(peer, p -> {
      CompletableFuture<List<Multiaddr>> addrs = peerStore.addrs(p).isEmpty() && routing != null
          ? routing.apply(p) : CompletableFuture.completedFuture(peerStore.addrs(p));
      CompletableFuture<Connection> f = addrs.thenCompose(list -> {
        if (list.isEmpty()) {
          throw new P2pException("no known address for peer " + p);
        }
        peerStore.addAddrs(p, list);
        // relay addresses last: a direct path, when one works, is the one to use
        List<Multiaddr> ordered = new ArrayList<>(list.stream().filter(a -> !a.isCircuit()).toList());
        list.stream().filter(Multiaddr::isCircuit).forEach(ordered::add);
        return dialFirst(ordered, 0, p, null);
      });
      f.whenComplete((conn, err) -> {
        dialing.remove(p);
        if (err != null) {
          long[] prev = backoff.getOrDefault(p, new long[] {0, 0});
          long failures = prev[0] + 1;
          long millis = Math.min(config.maxBackoff().toMillis(), 500L << Math.min(16, failures - 1));
          backoff.put(p, new long[] {failures, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis)});
        } else {
          backoff.remove(p);
        }
      });
      return f;
    });
  }

  private CompletableFuture<Connection> dialFirst(List<Multiaddr> addrs, int i, PeerId peer, Throwable last) {
    if (i >= addrs.size()) {
      return CompletableFuture.failedFuture(new P2pException("could not reach " + peer + " at " + addrs
          + (last == null ? "" : ": " + last.getMessage()), last));
    }
    return dial(addrs.get(i), peer).handle((c, e) -> e == null ? CompletableFuture.completedFuture(c)
        : dialFirst(addrs, i + 1, peer, e)).thenCompose(x -> x);
  }

  private CompletableFuture<Connection> dial(Multiaddr addr, PeerId expected) {
    if (addr.isCircuit()) {
      BiFunction<Multiaddr, PeerId, CompletableFuture<Connection>> d = circuitDialer;
      if (d == null || expected == null) {
        return CompletableFuture.failedFuture(new P2pException("cannot dial " + addr
            + (d == null ? ": no relay client on this host" : ": a relay address needs the target's /p2p id")));
      }
      return d.apply(addr, expected);
    }
    return tcp.dial(addr, expected).thenApply(c -> {
      register(c);
      return c;
    });
  }

  /**
   * Whether ordinary dials leave from the listen port (SO_REUSEPORT). Behind a NAT that makes the
   * address peers observe the one hole punching uses; a reachable node has no need of it. Off by default.
   */
  public void setDialFromListenPort(boolean on) {
    tcp.setDialFromListenPort(on);
  }

  /**
   * DCUtR's half of a TCP simultaneous open: dials {@code addr} from our listen port (SO_REUSEPORT),
   * so the SYN leaves through the NAT mapping the remote expects, and upgrades with the role the
   * hole punch assigned ({@code initiator}: the DCUtR initiator), whichever SYN got there first.
   * The connection is registered (a direct one displaces a relayed one).
   */
  public CompletableFuture<Connection> dialHolePunch(Multiaddr addr, PeerId expected, boolean initiator) {
    return tcp.dialHolePunch(addr, expected, initiator).thenApply(c -> {
      register(c);
      return c;
    });
  }

  /**
   * Gives up the ordinary dials from our listen port still in flight to any of {@code addrs} (a
   * hole punch to them starts; see {@code TcpTransport.abortListenPortDial}).
   */
  public void abortListenPortDials(List<Multiaddr> addrs) {
    for (Multiaddr a : addrs) {
      try {
        tcp.abortListenPortDial(a.toInetSocketAddress());
      } catch (IllegalArgumentException notTcp) {
        // nothing dialed there
      }
    }
  }

  /**
   * Dials a fresh connection, never reusing one, checks it reaches {@code peer}, and closes it: an
   * AutoNAT dial-back. Not registered, so the connection in use stays as it is.
   */
  public CompletableFuture<Multiaddr> probe(Multiaddr addr, PeerId peer) {
    return tcp.dialEphemeral(addr.withoutPeer(), peer).thenApply(c -> {
      c.channel().close();
      return c.remoteAddr();
    });
  }

  public void register(Connection c) {
    established.incrementAndGet();
    // One connection per peer serves new streams; a direct one displaces a relayed one (DCUtR).
    connections.compute(c.remotePeer(), (p, prev) -> prev == null || !prev.isOpen()
        || (prev.relayed() && !c.relayed()) ? c : prev);
    log.info("connected peer={} addr={} direction={} relayed={}", c.remotePeer(), c.remoteAddr(),
        c.outbound() ? "out" : "in", c.relayed());
    c.channel().closeFuture().addListener(x -> {
      established.decrementAndGet();
      connections.remove(c.remotePeer(), c);
      log.info("disconnected peer={}", c.remotePeer());
      onDisconnect.forEach(l -> l.accept(c));
    });
    c.muxer().goAwayReceived().thenAccept(code -> {
      // No new streams either way: the next stream to this peer needs a new connection.
      connections.remove(c.remotePeer(), c);
      log.info("go-away peer={} code={}: connection retired, {} streams left to finish", c.remotePeer(), code,
          c.muxer().streamCount());
      closeWhenIdle(c);
    });
    KeepAlive.start(c, config.keepAlive(), config.dialTimeout());
    onConnect.forEach(l -> l.accept(c));
    identify(c.remotePeer()).exceptionally(e -> {
      log.debug("identify of {} failed: {}", c.remotePeer(), e.getMessage());
      return null;
    });
  }

  /** Closes a retired connection once its last stream has ended. */
  private void closeWhenIdle(Connection c) {
    if (!c.channel().isActive()) {
      return;
    }
    if (c.muxer().streamCount() == 0) {
      c.channel().close();
    } else {
      c.channel().eventLoop().schedule(() -> closeWhenIdle(c), 1, TimeUnit.SECONDS);
    }
  }

  /** Asks a connected peer who it is; the answer also goes into the peer store. */
  public CompletableFuture<IdentifyProtocol.Info> identify(PeerId peer) {
    return identify.identify(peer);
  }

  /** The IP a peer's direct connection comes from; null when there is none (or it is relayed). */
  public InetAddress remoteIp(PeerId peer) {
    Connection c = connections.get(peer);
    if (c == null || c.relayed() || !(c.channel().remoteAddress() instanceof InetSocketAddress isa)) {
      return null;
    }
    return isa.getAddress();
  }

  /** Whether a connection to this peer is open now. */
  public boolean isConnected(PeerId peer) {
    Connection c = connections.get(peer);
    return c != null && c.isOpen();
  }

  /** Tells a connected peer our current protocols and addresses ({@code /ipfs/id/push/1.0.0}). */
  public CompletableFuture<Stream> pushIdentify(PeerId peer) {
    return identify.push(peer);
  }

  /** Round-trip time of a libp2p ping, in nanoseconds. */
  public CompletableFuture<Long> ping(PeerId peer) {
    CompletableFuture<Long> rtt = new CompletableFuture<>();
    newStream(peer, List.of(PingProtocol.ID), s -> PingProtocol.ping(s).whenComplete((t, e) -> {
      if (e != null) {
        rtt.completeExceptionally(e);
      } else {
        rtt.complete(t);
      }
    })).exceptionally(e -> {
      rtt.completeExceptionally(e);
      return null;
    });
    return rtt;
  }

  /**
   * Opens a stream to {@code peer} speaking the first of {@code protocols} it accepts; {@code init}
   * installs the protocol's handlers before any byte of the protocol is delivered.
   */
  public CompletableFuture<Stream> newStream(PeerId peer, List<String> protocols, StreamHandler init) {
    return connection(peer).thenCompose(c -> {
      CompletableFuture<Stream> result = new CompletableFuture<>();
      c.muxer().openStream(ch -> {
        MultistreamHandler ms = MultistreamHandler.initiator(protocols);
        ch.pipeline().addLast("ms", ms);
        ms.result().addListener(f -> {
          if (f.isSuccess()) {
            Stream s = new Stream((YamuxStreamChannel) ch, peer, (String) f.getNow());
            try {
              init.initStream(s);
              result.complete(s);
            } catch (RuntimeException e) {
              ch.close();
              result.completeExceptionally(e);
            }
          } else {
            result.completeExceptionally(f.cause());
          }
        });
      }).exceptionally(e -> {
        result.completeExceptionally(e);
        return null;
      });
      return result;
    });
  }

  private void acceptStream(YamuxStreamChannel child, PeerId remote) {
    MultistreamHandler ms = MultistreamHandler.responder(handlers.keySet());
    child.pipeline().addLast("ms", ms);
    ms.result().addListener(f -> {
      if (!f.isSuccess()) {
        return; // the handler closed the stream and the reason is on its promise
      }
      String protocol = (String) f.getNow();
      StreamHandler h = handlers.get(protocol);
      if (h == null) {
        child.close();
        return;
      }
      try {
        h.initStream(new Stream(child, remote, protocol));
      } catch (RuntimeException e) {
        log.warn("handler for {} from {} failed: {}", protocol, remote, e.toString());
        child.close();
      }
    });
  }

  /**
   * True from the moment {@link #close} starts: while a host closes its connections one by one,
   * what its protocols see end is their own doing, not their peers' failure.
   */
  public boolean isClosing() {
    return closing;
  }

  @Override
  public void close() {
    closing = true;
    tcp.closeListeners();
    new ArrayList<>(connections.values()).forEach(c -> c.channel().close());
    tcp.shutdown();
  }
}
