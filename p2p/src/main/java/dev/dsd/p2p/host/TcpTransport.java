package dev.dsd.p2p.host;

import dev.dsd.p2p.core.LimitExceededException;
import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.InterfaceAddrs;
import dev.dsd.p2p.multiaddr.Multiaddr;
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
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.IntSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TCP for a host (epoll when available): binds listen addresses, dials, and runs every socket
 * through the {@link Upgrader}. Inbound handshakes hold {@link HandshakeSlots} until they finish or
 * the dial timeout passes; the established-connection limit is checked against {@code established}.
 * Upgraded inbound connections go to {@code register}; dialed ones are returned to the caller.
 *
 * <p>Listeners set SO_REUSEADDR and SO_REUSEPORT so that dials may leave from the listen port: behind
 * a NAT (see {@link #setDialFromListenPort}) and for DCUtR's TCP simultaneous open.
 */
final class TcpTransport {
  private static final Logger log = LoggerFactory.getLogger(TcpTransport.class);

  private final HostConfig config;
  private final Upgrader upgrader;
  private final IntSupplier established;
  private final Consumer<Connection> register;
  private final EventLoopGroup group;
  private final Class<? extends ServerChannel> serverChannel;
  private final Class<? extends Channel> clientChannel;
  private final HandshakeSlots handshakes;
  private final HolePunchDials punches = new HolePunchDials();
  // ordinary dials in flight from the listen port, by remote address: a hole punch to the same
  // address needs that 4-tuple, and the remote's punch SYN would otherwise complete this dial
  // (a TCP simultaneous open) with the wrong Noise role
  private final Map<InetSocketAddress, CompletableFuture<Connection>> listenPortDials = new ConcurrentHashMap<>();
  private final AtomicInteger open = new AtomicInteger();
  private final List<Channel> servers = new CopyOnWriteArrayList<>();
  private EventLoopGroup reuseGroup; // lazily, see reuseGroup()
  private volatile boolean dialFromListenPort;

  TcpTransport(HostConfig config, Upgrader upgrader, IntSupplier established, Consumer<Connection> register) {
    this.config = config;
    this.upgrader = upgrader;
    this.established = established;
    this.register = register;
    this.handshakes = new HandshakeSlots(config.maxPendingInbound(), config.maxPendingPerIp());
    if (Epoll.isAvailable()) {
      group = new MultiThreadIoEventLoopGroup(0, EpollIoHandler.newFactory());
      serverChannel = EpollServerSocketChannel.class;
      clientChannel = EpollSocketChannel.class;
    } else {
      group = new MultiThreadIoEventLoopGroup(0, NioIoHandler.newFactory());
      serverChannel = NioServerSocketChannel.class;
      clientChannel = NioSocketChannel.class;
    }
  }

  EventLoopGroup group() {
    return group;
  }

  int openChannels() {
    return open.get();
  }

  int pendingHandshakes() {
    return handshakes.pending();
  }

  /** Binds {@code m}; returns the addresses it can be dialed at (a wildcard: each interface's). */
  List<Multiaddr> listen(Multiaddr m) {
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
    InetSocketAddress local = (InetSocketAddress) server.localAddress();
    // A wildcard socket reports '::', which nobody can dial: list the interfaces' addresses.
    return InterfaceAddrs.isWildcard(m) ? InterfaceAddrs.expand(m, local.getPort()) : List.of(Multiaddr.tcp(local));
  }

  /** Whether ordinary dials leave from the listen port (SO_REUSEPORT). Off by default. */
  void setDialFromListenPort(boolean on) {
    dialFromListenPort = on;
  }

  /**
   * Dials from an ephemeral port whatever {@link #setDialFromListenPort} says: an AutoNAT dial-back,
   * which needs no NAT mapping of ours and must not arrive from the address a hole punch of the
   * remote's may be waiting on (it would be taken for that punch's SYN).
   */
  CompletableFuture<Connection> dialEphemeral(Multiaddr addr, PeerId expected) {
    return dial(addr, expected, true, null);
  }

  /** Dials and upgrades; the connection is not registered anywhere. */
  CompletableFuture<Connection> dial(Multiaddr addr, PeerId expected) {
    InetSocketAddress local = dialFromListenPort ? reusableLocal() : null;
    if (local == null || !sameScope(local, addr)) {
      return dial(addr, expected, true, null);
    }
    // From the listen port, as go-libp2p does: a NAT then maps our outbound connections to the same
    // public port, which is what peers observe (identify) and what hole punching needs.
    CompletableFuture<Connection> attempt = dial(addr, expected, true, local);
    InetSocketAddress remote = HolePunchDials.key(addr.toInetSocketAddress());
    listenPortDials.put(remote, attempt);
    attempt.whenComplete((c, e) -> listenPortDials.remove(remote, attempt));
    return attempt.handle((c, e) -> {
      if (e == null) {
        return CompletableFuture.completedFuture(c);
      }
      String m = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
      return m.contains("already in use") || m.contains("assign requested address") || m.contains("invalid argument")
          ? dial(addr, expected, true, null) : CompletableFuture.<Connection>failedFuture(e);
    }).thenCompose(x -> x);
  }

  /**
   * Gives up an ordinary dial from the listen port to {@code remote} that is still in flight (it
   * fails, and its caller moves on to the peer's next address): a hole punch to that address is
   * about to start. Behind the remote's NAT that dial could not connect anyway, except by meeting
   * the punch's SYN, as the wrong Noise role.
   */
  void abortListenPortDial(InetSocketAddress remote) {
    CompletableFuture<Connection> f = listenPortDials.remove(HolePunchDials.key(remote));
    if (f != null && f.completeExceptionally(new P2pException("dial of " + remote
        + " from the listen port given up: a hole punch to that address starts"))) {
      log.debug("listen-port dial of {} given up for a hole punch", remote);
    }
  }

  /**
   * DCUtR's half of a TCP simultaneous open: dials from our listen port (SO_REUSEPORT) and upgrades
   * with the role the hole punch assigned, whichever SYN got there first. Not registered.
   */
  CompletableFuture<Connection> dialHolePunch(Multiaddr addr, PeerId expected, boolean initiator) {
    InetSocketAddress local = reusableLocal();
    if (local == null) {
      return CompletableFuture.failedFuture(new P2pException("hole punching needs a TCP listener"));
    }
    InetSocketAddress remote;
    try {
      InetSocketAddress u = addr.toInetSocketAddress();
      remote = new InetSocketAddress(u.getHostString(), u.getPort());
    } catch (IllegalArgumentException e) {
      return CompletableFuture.failedFuture(e);
    }
    // The remote's SYN may reach our listener first: accept() then upgrades that connection with
    // this role and completes p with it (see HolePunchDials), and our own connect fails.
    HolePunchDials.Pending p = punches.start(remote, expected, initiator);
    dial(addr, expected, initiator, local, HolePunchDials.CONNECT_TIMEOUT).whenComplete((c, e) -> {
      if (e == null) {
        punches.finish(remote, p);
        if (!p.result.complete(c)) {
          c.channel().close(); // the accepted connection won
        }
        return;
      }
      group.schedule(() -> {
        punches.finish(remote, p);
        if (!p.claimed) {
          p.result.completeExceptionally(e);
        }
      }, HolePunchDials.ACCEPT_GRACE.toMillis(), TimeUnit.MILLISECONDS);
    });
    return p.result;
  }

  /** A socket bound to a loopback address can reach only loopback addresses, and the other way round. */
  private static boolean sameScope(InetSocketAddress local, Multiaddr target) {
    try {
      String host = target.toInetSocketAddress().getHostString();
      if (!host.matches("[0-9.]+") && !host.contains(":")) {
        return false; // a DNS name: which address it resolves to is not known here
      }
      return local.getAddress().isAnyLocalAddress()
          || local.getAddress().isLoopbackAddress() == InetAddress.getByName(host).isLoopbackAddress();
    } catch (UnknownHostException | IllegalArgumentException e) {
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

  private CompletableFuture<Connection> dial(Multiaddr addr, PeerId expected, boolean initiator,
      InetSocketAddress local) {
    return dial(addr, expected, initiator, local, config.dialTimeout());
  }

  /**
   * {@code local}: the address to dial from (the listen port), or null for an ephemeral one;
   * {@code connectTimeout}: for the TCP connect alone (the whole dial has the host's dial timeout).
   */
  private CompletableFuture<Connection> dial(Multiaddr addr, PeerId expected, boolean initiator,
      InetSocketAddress local, java.time.Duration connectTimeout) {
    CompletableFuture<Connection> result = new CompletableFuture<>();
    InetSocketAddress a;
    try {
      InetSocketAddress u = addr.toInetSocketAddress();
      a = new InetSocketAddress(u.getHostString(), u.getPort());
    } catch (IllegalArgumentException e) {
      return CompletableFuture.failedFuture(e);
    }
    // Established connections only: inbound handshakes in flight have their own slots.
    if (established.getAsInt() >= config.maxConnections()) {
      return CompletableFuture.failedFuture(new LimitExceededException("connections",
          established.getAsInt() + 1, config.maxConnections()));
    }
    Bootstrap b = new Bootstrap().group(local == null ? group : reuseGroup())
        .channel(local == null ? clientChannel : NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(connectTimeout.toMillis(),
            config.dialTimeout().toMillis()))
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
            upgrader.upgrade(ch, initiator, expected, addr, true, false).whenComplete((c, e) -> {
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
    InetAddress ip = ((InetSocketAddress) ch.remoteAddress()).getAddress();
    String refused = handshakes.tryAcquire(ip);
    if (refused != null) {
      log.info("refused connection from {}: {}", ch.remoteAddress(), refused);
      ch.close();
      return;
    }
    open.incrementAndGet();
    ch.closeFuture().addListener(x -> open.decrementAndGet());
    Multiaddr remote = Multiaddr.tcp((InetSocketAddress) ch.remoteAddress());
    HolePunchDials.Pending punch = punches.claim((InetSocketAddress) ch.remoteAddress());
    if (punch != null) {
      log.info("inbound connection from {} is the hole punch to peer={}: upgraded as {}", remote, punch.peer,
          punch.initiator ? "initiator" : "responder");
    }
    // A handshake that never finishes gives its slot back after the dial timeout.
    upgrader.upgrade(ch, punch != null && punch.initiator, punch == null ? null : punch.peer, remote, true, false)
        .orTimeout(config.dialTimeout().toMillis(), TimeUnit.MILLISECONDS).whenComplete((c, e) -> {
          handshakes.release(ip);
          if (e != null) {
            log.info("inbound connection from {} failed to upgrade: {}", remote, e.toString());
            ch.close();
            if (punch != null) {
              punch.result.completeExceptionally(e);
            }
          } else if (punch != null && punch.result.complete(c)) {
            return; // the hole punch's caller registers it
          } else if (established.getAsInt() >= config.maxConnections()) {
            log.info("refused peer={} addr={}: {} connections established, limit {}", c.remotePeer(), remote,
                established.getAsInt(), config.maxConnections());
            ch.close();
          } else {
            register.accept(c);
          }
        });
  }

  void closeListeners() {
    servers.forEach(Channel::close);
  }

  void shutdown() {
    group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    synchronized (this) {
      if (reuseGroup != null) {
        reuseGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
      }
    }
  }
}
