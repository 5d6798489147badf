package dev.dsd.p2p.identify;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.identify.proto.IdentifyProto.Identify;
import dev.dsd.p2p.multiaddr.AddrScope;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.channel.socket.SocketChannel;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * identify on a host: answers {@code /ipfs/id/1.0.0}, asks every new connection, takes pushes
 * ({@code /ipfs/id/push/1.0.0}) and pushes our own message to every connected peer when our
 * addresses or protocols change. Each peer is told only the addresses it can reach (a peer on the
 * public internet does not learn our private ones), and what peers observe us at feeds
 * {@link ObservedAddrs}, whose confirmed public addresses the host then advertises.
 */
public final class IdentifyService {
  private static final Logger log = LoggerFactory.getLogger(IdentifyService.class);
  /** Changes that come together (a handler set, an address confirmed) go out in one push. */
  public static final long PUSH_DELAY_MILLIS = 100;

  private final NettyHost host;
  private final ObservedAddrs observed = new ObservedAddrs();
  private final List<Consumer<IdentifyProtocol.Info>> listeners = new CopyOnWriteArrayList<>();
  // js-libp2p accepts one identify stream per connection at a time: callers share the one in flight.
  private final Map<PeerId, CompletableFuture<IdentifyProtocol.Info>> running = new ConcurrentHashMap<>();
  private final AtomicBoolean pushScheduled = new AtomicBoolean();

  public IdentifyService(NettyHost host) {
    this.host = host;
    host.setStreamHandler(IdentifyProtocol.ID, s -> IdentifyProtocol.send(s, () -> message(s)));
    host.setStreamHandler(IdentifyProtocol.PUSH, s -> IdentifyProtocol.receive(s).thenAccept(i -> learn(i, null)));
  }

  /** Our identify message as the peer on {@code s} may see it. */
  private Identify message(Stream s) {
    SocketAddress remote = s.channel().remoteAddress();
    boolean direct = s.channel().parent() instanceof SocketChannel;
    // Over a relayed connection the socket's far end is the relay, so no observedAddr, and the peer
    // is told what the relay's scope reaches (it reached the relay too): a relay on the public
    // internet, only public addresses (and circuit addresses through public relays).
    AddrScope scope = direct ? scopeOf(remote) : host.connections().stream()
        .filter(c -> c.channel() == s.channel().parent()).findFirst()
        .map(c -> AddrScope.of(c.remoteAddr())).orElse(AddrScope.PUBLIC);
    return IdentifyProtocol.message(host.identity().publicKeyProto(), host.config().agentVersion(), host.protocols(),
        host.addrs().advertisedTo(scope), direct ? remote : null);
  }

  static AddrScope scopeOf(SocketAddress remote) {
    return remote instanceof InetSocketAddress isa && isa.getAddress() != null ? AddrScope.of(isa.getAddress())
        : AddrScope.PUBLIC; // unknown (a relayed stream): assume the narrowest audience
  }

  public void onIdentify(Consumer<IdentifyProtocol.Info> listener) {
    listeners.add(listener);
  }

  /** Asks a connected peer who it is; the answer also goes into the peer store. */
  public CompletableFuture<IdentifyProtocol.Info> identify(PeerId peer) {
    CompletableFuture<IdentifyProtocol.Info> mine = new CompletableFuture<>();
    CompletableFuture<IdentifyProtocol.Info> prev = running.putIfAbsent(peer, mine);
    if (prev != null) {
      return prev;
    }
    mine.whenComplete((i, e) -> running.remove(peer, mine));
    host.newStream(peer, List.of(IdentifyProtocol.ID), s -> IdentifyProtocol.receive(s).whenComplete((i, e) -> {
      if (e != null) {
        mine.completeExceptionally(e);
      } else {
        learn(i, s.channel().remoteAddress());
        mine.complete(i);
      }
    })).exceptionally(e -> {
      mine.completeExceptionally(e);
      return null;
    });
    return mine;
  }

  private void learn(IdentifyProtocol.Info i, SocketAddress observer) {
    host.peerStore().addAddrs(i.peer(), i.listenAddrs());
    host.peerStore().setProtocols(i.peer(), i.protocols());
    if (observer instanceof InetSocketAddress isa && isa.getAddress() != null && i.observedAddr() != null) {
      Set<Multiaddr> confirmed = observed.record(isa.getAddress(), i.observedAddr(), host.addrs().listen(),
          System.currentTimeMillis());
      if (!confirmed.equals(host.addrs().observed())) {
        log.info("observed address confirmed={} by_peers_at_ips>={}", confirmed, ObservedAddrs.MIN_OBSERVER_IPS);
        host.addrs().setObserved(confirmed);
      }
    }
    listeners.forEach(l -> l.accept(i));
  }

  /** Tells one connected peer our current protocols and addresses. */
  public CompletableFuture<Stream> push(PeerId peer) {
    return host.newStream(peer, List.of(IdentifyProtocol.PUSH), s -> IdentifyProtocol.send(s, () -> message(s)));
  }

  /** Pushes to every connected peer, once, shortly after a burst of changes. */
  public void schedulePushAll() {
    if (host.isClosing() || !pushScheduled.compareAndSet(false, true)) {
      return;
    }
    host.schedule(() -> {
      pushScheduled.set(false);
      for (Connection c : host.connections()) {
        if (!host.peerStore().protocols(c.remotePeer()).contains(IdentifyProtocol.PUSH)) {
          continue; // it said it takes no pushes (or has not said yet: it will ask us itself)
        }
        push(c.remotePeer()).whenComplete((s, e) -> {
          if (e != null) {
            log.debug("identify push to {} failed: {}", c.remotePeer(), e.getMessage());
          }
        });
      }
    }, PUSH_DELAY_MILLIS);
  }
}
