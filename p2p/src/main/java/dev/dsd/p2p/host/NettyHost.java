package dev.dsd.p2p.host;

import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.identify.IdentifyProtocol;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.multistream.MultistreamHandler;
import dev.dsd.p2p.noise.NoiseHandshakeHandler;
import dev.dsd.p2p.ping.PingProtocol;
import dev.dsd.p2p.pnet.ConnectionProtector;
import dev.dsd.p2p.pnet.PeerNotAllowedException;
import dev.dsd.p2p.yamux.YamuxFrameCodec;
import dev.dsd.p2p.yamux.YamuxSession;
import dev.dsd.p2p.yamux.YamuxStreamChannel;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioChannelOption;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A libp2p host on Netty TCP (epoll when available). Every connection, dialed or accepted, is
 * upgraded by the same chain, assembled in {@link #upgrade}:
 *
 * <pre>
 *   TCP → [pnet: nonces, XSalsa20] → multistream(/noise) → Noise XX → [allowPeers] → multistream(/yamux/1.0.0) → yamux
 *   each stream → multistream(application protocol) → the protocol's StreamHandler
 * </pre>
 *
 * The bracketed steps run only when configured: a swarm key puts the host in that private network
 * ({@link ConnectionProtector}), an allowlist drops authenticated peers that are not on it.
 * One connection per peer is kept and reused for all streams. Identify runs on every new
 * connection and fills the {@link PeerStore}; ping and identify are served by default.
 */
public final class NettyHost implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NettyHost.class);

  private final Identity identity;
  private final HostConfig config;
  private final EventLoopGroup group;
  private final Class<? extends ServerChannel> serverChannel;
  private final Class<? extends Channel> clientChannel;
  private final Map<String, StreamHandler> handlers = new ConcurrentHashMap<>();
  private final Map<PeerId, Connection> connections = new ConcurrentHashMap<>();
  private final Map<PeerId, CompletableFuture<Connection>> dialing = new ConcurrentHashMap<>();
  private final Map<PeerId, long[]> backoff = new ConcurrentHashMap<>(); // {failures, until nanos}
  private final List<Channel> servers = new CopyOnWriteArrayList<>();
  private final List<Multiaddr> listenAddrs = new CopyOnWriteArrayList<>();
  private final List<Consumer<Connection>> onConnect = new CopyOnWriteArrayList<>();
  private final List<Consumer<Connection>> onDisconnect = new CopyOnWriteArrayList<>();
  private final List<Consumer<IdentifyProtocol.Info>> onIdentify = new CopyOnWriteArrayList<>();
  // js-libp2p accepts one identify stream per connection at a time: callers share the one in flight.
  private final Map<PeerId, CompletableFuture<IdentifyProtocol.Info>> identifying = new ConcurrentHashMap<>();
  private final AtomicInteger open = new AtomicInteger();
  private final PeerStore peerStore = new PeerStore();
  private final ConnectionProtector protector; // null: public network
  private volatile Function<PeerId, CompletableFuture<List<Multiaddr>>> routing;
  // Relay hooks (package relay): dialing /p2p-circuit addresses, and the circuit addresses to advertise.
  private volatile BiFunction<Multiaddr, PeerId, CompletableFuture<Connection>> circuitDialer;
  private final List<Supplier<List<Multiaddr>>> addressSources = new CopyOnWriteArrayList<>();
  private volatile boolean closing;
  private EventLoopGroup reuseGroup; // lazily, see reuseGroup()
  private volatile boolean dialFromListenPort;

  public NettyHost(Identity identity, HostConfig config) {
    this.identity = identity;
    this.config = config;
    // Half the dial timeout: a remote that stays silent (a js-libp2p listener with another key
    // does) then fails with the private-network error rather than a bare dial timeout.
    this.protector = config.swarmKey() == null ? null
        : new ConnectionProtector(config.swarmKey(), config.dialTimeout().dividedBy(2));
    if (Epoll.isAvailable()) {
      group = new MultiThreadIoEventLoopGroup(0, EpollIoHandler.newFactory());
      serverChannel = EpollServerSocketChannel.class;
      clientChannel = EpollSocketChannel.class;
    } else {
      group = new MultiThreadIoEventLoopGroup(0, NioIoHandler.newFactory());
      serverChannel = NioServerSocketChannel.class;
      clientChannel = NioSocketChannel.class;
    }
    setStreamHandler(PingProtocol.ID, PingProtocol::respond);
    setStreamHandler(IdentifyProtocol.ID, s -> IdentifyProtocol.send(s, () -> IdentifyProtocol.message(
        identity.publicKeyProto(), config.agentVersion(), protocols(), advertisedAddrs(), observed(s))));
    setStreamHandler(IdentifyProtocol.PUSH, s -> IdentifyProtocol.receive(s).thenAccept(this::learn));
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
      InetSocketAddress a = m.toInetSocketAddress();
      ServerBootstrap b = new ServerBootstrap().group(group).channel(serverChannel)
          .childOption(ChannelOption.TCP_NODELAY, true)
          .childHandler(new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
              accept(ch);
            }
          });
      // outbound dials and hole punches bind this port too (see dial)
      b.option(ChannelOption.SO_REUSEADDR, true);
      if (Epoll.isAvailable()) {
        b.option(EpollChannelOption.SO_REUSEPORT, true);
      } else {
        b.option(NioChannelOption.of(StandardSocketOptions.SO_REUSEPORT), true);
      }
      Channel server = b.bind(new InetSocketAddress(a.getHostString(), a.getPort())).syncUninterruptibly().channel();
      servers.add(server);
      Multiaddr bound = Multiaddr.tcp((InetSocketAddress) server.localAddress());
      listenAddrs.add(bound);
      log.info("listening {}/p2p/{}", bound, peerId());
    }
    return this;
  }

  public PeerId peerId() {
    return identity.peerId();
  }

  public Identity identity() {
    return identity;
  }

  public List<Multiaddr> listenAddrs() {
    return List.copyOf(listenAddrs);
  }

  /**
   * What identify tells others: the announce addresses when configured, else the listen addresses;
   * then what the address sources add (relay addresses of reservations).
   */
  public List<Multiaddr> advertisedAddrs() {
    List<Multiaddr> base = config.announce().isEmpty() ? listenAddrs() : config.announce();
    if (addressSources.isEmpty()) {
      return base;
    }
    List<Multiaddr> out = new ArrayList<>(base);
    addressSources.forEach(src -> src.get().stream().filter(a -> !out.contains(a)).forEach(out::add));
    return List.copyOf(out);
  }

  /** Adds addresses to advertise that the host does not listen on itself (relay circuit addresses). */
  public void addAddressSource(Supplier<List<Multiaddr>> source) {
    addressSources.add(source);
  }

  /** Dials /p2p-circuit addresses (installed by the relay client): (address, expected peer) to connection. */
  public void setCircuitDialer(BiFunction<Multiaddr, PeerId, CompletableFuture<Connection>> dialer) {
    this.circuitDialer = dialer;
  }

  /**
   * Runs the connection upgrade (security, muxer) over a channel that is not a TCP socket: a
   * relayed stream that has become a connection. {@code addr} is the /p2p-circuit address.
   */
  public CompletableFuture<Connection> upgradeRelayed(Channel stream, boolean initiator, PeerId expected,
      Multiaddr addr) {
    return upgrade(stream, initiator, expected, addr);
  }

  public PeerStore peerStore() {
    return peerStore;
  }

  public void setStreamHandler(String protocol, StreamHandler handler) {
    handlers.put(protocol, handler);
  }

  public void removeStreamHandler(String protocol) {
    handlers.remove(protocol);
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
    onIdentify.add(listener);
  }

  public List<Connection> connections() {
    return List.copyOf(connections.values());
  }

  /** TCP connections open now, both directions, upgraded or still upgrading. */
  public int openChannels() {
    return open.get();
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
    InetSocketAddress local = dialFromListenPort ? reusableLocal() : null;
    if (local == null || !sameScope(local, addr)) {
      return dialTcp(addr, expected, true, null);
    }
    // From the listen port, as go-libp2p does: a NAT then maps our outbound connections to the same
    // public port, which is what peers observe (identify) and what hole punching needs.
    return dialTcp(addr, expected, true, local).handle((c, e) -> {
      if (e == null) {
        return CompletableFuture.completedFuture(c);
      }
      String m = String.valueOf(e.getMessage()).toLowerCase(java.util.Locale.ROOT);
      return m.contains("already in use") || m.contains("assign requested address") || m.contains("invalid argument")
          ? dialTcp(addr, expected, true, null) : CompletableFuture.<Connection>failedFuture(e);
    }).thenCompose(x -> x);
  }

  /**
   * Whether ordinary dials leave from the listen port (SO_REUSEPORT). Behind a NAT that makes the
   * address peers observe the one hole punching uses; a reachable node has no need of it. Off by default.
   */
  public void setDialFromListenPort(boolean on) {
    dialFromListenPort = on;
  }

  /**
   * DCUtR's half of a TCP simultaneous open: dials {@code addr} from our listen port (SO_REUSEPORT),
   * so the SYN leaves through the NAT mapping the remote expects, and upgrades with the role the
   * hole punch assigned ({@code initiator}: the DCUtR initiator), whichever SYN got there first.
   */
  public CompletableFuture<Connection> dialHolePunch(Multiaddr addr, PeerId expected, boolean initiator) {
    InetSocketAddress local = reusableLocal();
    if (local == null) {
      return CompletableFuture.failedFuture(new P2pException("hole punching needs a TCP listener and epoll (SO_REUSEPORT)"));
    }
    return dialTcp(addr, expected, initiator, local);
  }

  /** A socket bound to a loopback address can reach only loopback addresses, and the other way round. */
  private static boolean sameScope(InetSocketAddress local, Multiaddr target) {
    try {
      String host = target.toInetSocketAddress().getHostString();
      if (!host.matches("[0-9.]+") && !host.contains(":")) {
        return false; // a DNS name: which address it resolves to is not known here
      }
      return local.getAddress().isAnyLocalAddress()
          || local.getAddress().isLoopbackAddress() == java.net.InetAddress.getByName(host).isLoopbackAddress();
    } catch (java.net.UnknownHostException | IllegalArgumentException e) {
      return false;
    }
  }

  /** The first listener's address, to dial from; null without one. */
  private InetSocketAddress reusableLocal() {
    return servers.isEmpty() ? null : (InetSocketAddress) servers.get(0).localAddress();
  }

  /**
   * Netty's epoll client channel cannot set SO_REUSEPORT (only its server channel can), so dials
   * from the listen port use NIO sockets, which can, on an event loop group of their own.
   */
  private synchronized EventLoopGroup reuseGroup() {
    if (clientChannel == NioSocketChannel.class) {
      return group;
    }
    if (reuseGroup == null) {
      reuseGroup = new MultiThreadIoEventLoopGroup(0, NioIoHandler.newFactory());
    }
    return reuseGroup;
  }

  private CompletableFuture<Connection> dialTcp(Multiaddr addr, PeerId expected, boolean initiator,
      InetSocketAddress local) {
    CompletableFuture<Connection> result = new CompletableFuture<>();
    InetSocketAddress a;
    try {
      InetSocketAddress u = addr.toInetSocketAddress();
      a = new InetSocketAddress(u.getHostString(), u.getPort());
    } catch (IllegalArgumentException e) {
      return CompletableFuture.failedFuture(e);
    }
    if (open.get() >= config.maxConnections()) {
      return CompletableFuture.failedFuture(new dev.dsd.p2p.core.LimitExceededException("connections",
          open.get() + 1, config.maxConnections()));
    }
    Bootstrap b = new Bootstrap().group(local == null ? group : reuseGroup())
        .channel(local == null ? clientChannel : NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.dialTimeout().toMillis())
        .handler(new ChannelInitializer<>() {
          @Override
          protected void initChannel(Channel ch) {
            open.incrementAndGet();
            ch.closeFuture().addListener(x -> open.decrementAndGet());
            // A dial that failed or timed out must not leave its half-upgraded channel behind.
            result.whenComplete((c, e) -> {
              if (e != null) {
                ch.close();
              }
            });
            upgrade(ch, initiator, expected, addr).whenComplete((c, e) -> {
              if (e != null) {
                result.completeExceptionally(e);
              } else {
                result.complete(c);
              }
            });
          }
        });
    if (local != null) {
      b.option(ChannelOption.SO_REUSEADDR, true).option(NioChannelOption.of(StandardSocketOptions.SO_REUSEPORT), true);
    }
    (local == null ? b.connect(a) : b.connect(a, local)).addListener(f -> {
      if (!f.isSuccess()) {
        result.completeExceptionally(new P2pException("dial " + addr + " failed: " + f.cause().getMessage(), f.cause()));
      }
    });
    return result.orTimeout(config.dialTimeout().toMillis(), TimeUnit.MILLISECONDS);
  }

  private void accept(Channel ch) {
    if (open.incrementAndGet() > config.maxConnections()) {
      open.decrementAndGet();
      log.info("refused connection from {}: {} connections open, limit {}", ch.remoteAddress(), open.get(),
          config.maxConnections());
      ch.close();
      return;
    }
    ch.closeFuture().addListener(x -> open.decrementAndGet());
    Multiaddr remote = Multiaddr.tcp((InetSocketAddress) ch.remoteAddress());
    upgrade(ch, false, null, remote).exceptionally(e -> {
      log.info("inbound connection from {} failed to upgrade: {}", remote, e.getMessage());
      return null;
    });
  }

  /** The whole connection upgrade, in the order the bytes flow. */
  private CompletableFuture<Connection> upgrade(Channel ch, boolean initiator, PeerId expected, Multiaddr addr) {
    CompletableFuture<Connection> done = new CompletableFuture<>();
    if (protector != null) {
      // Fails first, and says why, when the remote is outside the private network.
      protector.protect(ch).addListener(f -> {
        if (!f.isSuccess()) {
          fail(ch, done, f.cause());
        }
      });
    }
    MultistreamHandler security = initiator ? MultistreamHandler.initiator(List.of(NoiseHandshakeHandler.PROTOCOL_ID))
        : MultistreamHandler.responder(Set.of(NoiseHandshakeHandler.PROTOCOL_ID));
    ch.pipeline().addLast("ms-security", security);
    security.result().addListener(f1 -> {
      if (!f1.isSuccess()) {
        fail(ch, done, f1.cause());
        return;
      }
      // No early muxer negotiation: we list no muxers, so both sides use multistream for yamux.
      NoiseHandshakeHandler noise = new NoiseHandshakeHandler(identity, initiator, expected, List.of());
      ch.pipeline().addAfter("ms-security", "noise", noise);
      noise.result().addListener(f2 -> {
        if (!f2.isSuccess()) {
          fail(ch, done, f2.cause());
          return;
        }
        PeerId remote = noise.result().getNow().remotePeer();
        if (!config.allows(remote)) {
          log.info("refused peer={} addr={} direction={}: not in allowPeers ({} peers allowed)", remote, addr,
              initiator ? "out" : "in", config.allowPeers().size());
          fail(ch, done, new PeerNotAllowedException(remote, config.allowPeers().size()));
          return;
        }
        MultistreamHandler mux = initiator ? MultistreamHandler.initiator(List.of(YamuxSession.PROTOCOL_ID))
            : MultistreamHandler.responder(Set.of(YamuxSession.PROTOCOL_ID));
        ch.pipeline().addAfter("noise-transport", "ms-muxer", mux);
        mux.result().addListener(f3 -> {
          if (!f3.isSuccess()) {
            fail(ch, done, f3.cause());
            return;
          }
          YamuxSession session = new YamuxSession(initiator, child -> acceptStream(child, remote));
          ch.pipeline().addAfter("ms-muxer", "yamux-codec", new YamuxFrameCodec());
          ch.pipeline().addAfter("yamux-codec", "yamux", session);
          Connection c = new Connection(ch, remote, addr, initiator, session);
          registered(c);
          done.complete(c);
        });
      });
    });
    return done;
  }

  private static void fail(Channel ch, CompletableFuture<Connection> done, Throwable cause) {
    done.completeExceptionally(cause);
    ch.close();
  }

  private void registered(Connection c) {
    // One connection per peer serves new streams; a direct one displaces a relayed one (DCUtR).
    connections.compute(c.remotePeer(), (p, prev) -> prev == null || !prev.isOpen()
        || (prev.isRelayed() && !c.isRelayed()) ? c : prev);
    log.info("connected peer={} addr={} direction={} relayed={}", c.remotePeer(), c.remoteAddr(),
        c.outbound() ? "out" : "in", c.isRelayed());
    c.channel().closeFuture().addListener(x -> {
      connections.remove(c.remotePeer(), c);
      log.info("disconnected peer={}", c.remotePeer());
      onDisconnect.forEach(l -> l.accept(c));
    });
    onConnect.forEach(l -> l.accept(c));
    identify(c.remotePeer()).exceptionally(e -> {
      log.debug("identify of {} failed: {}", c.remotePeer(), e.getMessage());
      return null;
    });
  }

  /** Asks a connected peer who it is; the answer also goes into the peer store. */
  public CompletableFuture<IdentifyProtocol.Info> identify(PeerId peer) {
    CompletableFuture<IdentifyProtocol.Info> running = identifying.get(peer);
    if (running != null) {
      return running;
    }
    CompletableFuture<IdentifyProtocol.Info> info = new CompletableFuture<>();
    if (identifying.putIfAbsent(peer, info) != null) {
      return identifying.get(peer);
    }
    info.whenComplete((i, e) -> identifying.remove(peer, info));
    newStream(peer, List.of(IdentifyProtocol.ID), s -> IdentifyProtocol.receive(s).whenComplete((i, e) -> {
      if (e != null) {
        info.completeExceptionally(e);
      } else {
        learn(i);
        info.complete(i);
      }
    })).exceptionally(e -> {
      info.completeExceptionally(e);
      return null;
    });
    return info;
  }

  private void learn(IdentifyProtocol.Info i) {
    peerStore.addAddrs(i.peer(), i.listenAddrs());
    peerStore.setProtocols(i.peer(), i.protocols());
    onIdentify.forEach(l -> l.accept(i));
  }

  /** Whether a connection to this peer is open now. */
  public boolean isConnected(PeerId peer) {
    Connection c = connections.get(peer);
    return c != null && c.isOpen();
  }

  /** Tells a connected peer our current protocols and addresses ({@code /ipfs/id/push/1.0.0}). */
  public CompletableFuture<Stream> pushIdentify(PeerId peer) {
    return newStream(peer, List.of(IdentifyProtocol.PUSH), s -> IdentifyProtocol.send(s, () -> IdentifyProtocol.message(
        identity.publicKeyProto(), config.agentVersion(), protocols(), advertisedAddrs(), observed(s))));
  }

  /** The remote's address as we see it, or null over a relay, where the socket's far end is the relay. */
  private static java.net.SocketAddress observed(Stream s) {
    return s.channel().parent() instanceof YamuxStreamChannel ? null : s.channel().remoteAddress();
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
    servers.forEach(Channel::close);
    new ArrayList<>(connections.values()).forEach(c -> c.channel().close());
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    synchronized (this) {
      if (reuseGroup != null) {
        reuseGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
      }
    }
  }
}
