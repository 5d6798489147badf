package dev.dsd.p2p.kad;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.framing.VarintFrameDecoder;
import dev.dsd.p2p.framing.VarintFrameEncoder;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.kad.proto.KadProto.Message;
import dev.dsd.p2p.kad.proto.KadProto.Record;
import dev.dsd.p2p.multiaddr.AddrScope;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.net.InetAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The libp2p Kademlia DHT ({@code /ipfs/kad/1.0.0}) on a {@link NettyHost}: FIND_NODE,
 * GET/PUT_VALUE with validated records, ADD_PROVIDER/GET_PROVIDERS, iterative lookups with
 * {@link #ALPHA} queries in flight, bootstrap and periodic refresh. In server mode it answers
 * requests and identify advertises the protocol; in client mode it only asks. It also serves as the
 * host's peer routing, so {@code newStream} reaches peers known only to the DHT.
 */
public final class KadDht implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KadDht.class);
  public static final String PROTOCOL = "/ipfs/kad/1.0.0";
  public static final int ALPHA = 3;
  public static final Duration REFRESH_INTERVAL = Duration.ofMinutes(10);
  public static final Duration LOOKUP_TIMEOUT = Duration.ofSeconds(30);

  private final NettyHost host;
  private final boolean server;
  private volatile boolean serving;
  private final RoutingTable table;
  private final KadStores stores;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "kad-refresh");
    t.setDaemon(true);
    return t;
  });

  public KadDht(NettyHost host, boolean server, Map<String, RecordValidator> extraValidators) {
    this.host = host;
    this.server = server;
    this.table = new RoutingTable(host.peerId());
    Map<String, RecordValidator> v = new HashMap<>(extraValidators);
    v.put("pk", RecordValidator.PUBLIC_KEY);
    this.stores = new KadStores(v);
    setServing(server);
    // A node others cannot dial is no use as a DHT server: it only asks (and identify, pushed on
    // the change, stops listing the protocol), until AutoNAT finds it reachable again.
    host.onReachability(r -> setServing(server && !r.isPrivate()));
    host.onIdentify(info -> {
      if (info.protocols().contains(PROTOCOL)) {
        table.add(info.peer(), host::isConnected);
      } else {
        table.remove(info.peer()); // it went client-only (or never served)
      }
    });
    host.setPeerRouting(this::findPeer);
    timer.scheduleAtFixedRate(this::refresh, REFRESH_INTERVAL.toMillis(), REFRESH_INTERVAL.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  public RoutingTable routingTable() {
    return table;
  }

  /** Whether this node answers DHT requests now (server mode asked for, and not found unreachable). */
  public boolean isServing() {
    return serving;
  }

  private synchronized void setServing(boolean on) {
    if (on == serving) {
      return;
    }
    serving = on;
    if (on) {
      host.setStreamHandler(PROTOCOL, this::serve);
    } else {
      host.removeStreamHandler(PROTOCOL);
    }
    log.info("dht mode={}", on ? "server" : "client");
  }

  /** Connects to the bootstrap peers, then looks up our own id to fill the table. */
  public CompletableFuture<Void> bootstrap(List<Multiaddr> peers) {
    List<CompletableFuture<?>> dials = new ArrayList<>();
    for (Multiaddr m : peers) {
      dials.add(host.connect(m).thenCompose(c -> host.identify(c.remotePeer())).thenAccept(info -> {
        if (info.protocols().contains(PROTOCOL)) {
          table.add(info.peer(), host::isConnected);
        }
      }).exceptionally(e -> {
        log.warn("bootstrap peer {} unreachable: {}", m, e.getMessage());
        return null;
      }));
    }
    return CompletableFuture.allOf(dials.toArray(new CompletableFuture[0]))
        .thenCompose(x -> closestPeers(host.peerId().toBytes())).thenAccept(found ->
            log.info("dht bootstrap done table={} closest={}", table.size(), found.size()));
  }

  private void refresh() {
    closestPeers(host.peerId().toBytes()).exceptionally(e -> List.of());
  }

  // ---- server side ----

  private void serve(Stream s) {
    s.channel().pipeline().addLast(new VarintFrameDecoder(KadRpc.MAX_MESSAGE), VarintFrameEncoder.INSTANCE,
        new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf b = (ByteBuf) msg;
            try {
              Message req = Message.parseFrom(ByteBufUtil.getBytes(b));
              Message resp = handle(s.remotePeer(), req);
              if (resp != null) {
                ctx.writeAndFlush(Unpooled.wrappedBuffer(resp.toByteArray()));
              }
            } catch (InvalidProtocolBufferException e) {
              log.info("kad request from {} is not valid protobuf; closing", s.remotePeer());
              ctx.close();
            } catch (ProtocolViolationException e) {
              log.info("kad request from {} refused: {}", s.remotePeer(), e.getMessage());
              ctx.close();
            } finally {
              b.release();
            }
          }

          @Override
          public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            // The asker is done: half-close too, or its side keeps the stream (js counts it
            // against its per-protocol stream limit) until the connection ends.
            if (evt instanceof ChannelInputShutdownEvent) {
              s.closeWrite();
            }
            ctx.fireUserEventTriggered(evt);
          }

          @Override
          public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            log.info("kad stream from {} closed: {}", s.remotePeer(), cause.getMessage());
            ctx.close();
          }
        });
  }

  Message handle(PeerId from, Message req) {
    if (req.getType() == Message.MessageType.UNRECOGNIZED) {
      throw new ProtocolViolationException("unknown kad message type " + req.getTypeValue());
    }
    byte[] key = req.getKey().toByteArray();
    Message.Builder resp = Message.newBuilder().setType(req.getType()).setKey(req.getKey());
    switch (req.getType()) {
      case FIND_NODE -> resp.addAllCloserPeers(peerInfos(closerThanUs(key, from), from));
      case GET_PROVIDERS -> {
        resp.addAllProviderPeers(peerInfos(stores.providers(key), from));
        resp.addAllCloserPeers(peerInfos(closerThanUs(key, from), from));
      }
      case ADD_PROVIDER -> {
        for (Message.Peer p : req.getProviderPeersList()) {
          PeerId id = PeerId.fromBytes(p.getId().toByteArray());
          if (!id.equals(from)) {
            continue; // only the sender may announce itself (spec)
          }
          String refused = stores.addRemoteProvider(key, id, KadStores.network(host.remoteIp(from)));
          if (refused != null) {
            log.debug("kad provider record from {} refused: {}", from, refused);
            continue;
          }
          host.peerStore().addAddrs(id, addrs(p));
        }
        return null;
      }
      case PUT_VALUE -> {
        if (!req.getRecord().getKey().equals(req.getKey())) {
          throw new ProtocolViolationException("PUT_VALUE record key differs from the message key");
        }
        stores.putRecord(key, req.getRecord().getValue().toByteArray());
        resp.setRecord(req.getRecord());
      }
      case GET_VALUE -> {
        KadStores.StoredRecord r = stores.record(key);
        if (r != null) {
          resp.setRecord(Record.newBuilder().setKey(req.getKey()).setValue(ByteString.copyFrom(r.value()))
              .setTimeReceived(Instant.ofEpochMilli(r.receivedMillis()).toString()));
        }
        resp.addAllCloserPeers(peerInfos(closerThanUs(key, from), from));
      }
      case PING -> { }
      default -> throw new ProtocolViolationException("unknown kad message type " + req.getTypeValue());
    }
    return resp.build();
  }

  private List<PeerId> closerThanUs(byte[] key, PeerId requester) {
    return table.closest(KadKey.of(key), RoutingTable.K).stream().filter(p -> !p.equals(requester)).toList();
  }

  /**
   * Peer entries for an answer to {@code viewer}: only addresses it could reach from where it is
   * (a peer on the internet is not handed our or anyone's private addresses), ours as we advertise them.
   */
  private List<Message.Peer> peerInfos(List<PeerId> peers, PeerId viewer) {
    InetAddress ip = host.remoteIp(viewer);
    AddrScope scope = ip == null ? AddrScope.PUBLIC : AddrScope.of(ip);
    List<Message.Peer> out = new ArrayList<>();
    for (PeerId p : peers) {
      Message.Peer.Builder b = Message.Peer.newBuilder().setId(ByteString.copyFrom(p.toBytes()))
          .setConnection(host.isConnected(p) ? Message.ConnectionType.CONNECTED : Message.ConnectionType.CAN_CONNECT);
      List<Multiaddr> addrs = p.equals(host.peerId()) ? host.advertisedAddrsFor(viewer)
          : host.peerStore().addrs(p).stream().filter(a -> AddrScope.of(a).reachableFrom(scope)).toList();
      addrs.forEach(a -> b.addAddrs(ByteString.copyFrom(a.withoutPeer().toBytes())));
      out.add(b.build());
    }
    return out;
  }

  private static List<Multiaddr> addrs(Message.Peer p) {
    List<Multiaddr> out = new ArrayList<>();
    for (ByteString a : p.getAddrsList()) {
      try {
        out.add(Multiaddr.fromBytes(a.toByteArray()));
      } catch (ProtocolViolationException ignored) {
        // an address of a transport dsd does not speak
      }
    }
    return out;
  }

  // ---- client side ----

  /** The peers closest to {@code key} that answered, closest first (iterative FIND_NODE). */
  public CompletableFuture<List<PeerId>> closestPeers(byte[] key) {
    return new Lookup(key, Message.MessageType.FIND_NODE, 0).run().thenApply(Lookup::closestAnswered);
  }

  /** Addresses of a peer, from the peer store or the DHT. */
  public CompletableFuture<List<Multiaddr>> findPeer(PeerId peer) {
    List<Multiaddr> known = host.peerStore().addrs(peer);
    if (!known.isEmpty()) {
      return CompletableFuture.completedFuture(known);
    }
    return new Lookup(peer.toBytes(), Message.MessageType.FIND_NODE, 0).stopWhenSeen(peer).run()
        .thenApply(l -> host.peerStore().addrs(peer));
  }

  /** Announces this node as a provider of {@code key} to the closest peers (and itself). */
  public CompletableFuture<Integer> provide(byte[] key) {
    stores.addProvider(key, host.peerId());
    return closestPeers(key).thenCompose(peers -> {
      List<CompletableFuture<Boolean>> sends = new ArrayList<>();
      for (PeerId p : peers) {
        // each peer learns only the addresses of ours it can reach (no private ones to the internet)
        Message m = Message.newBuilder().setType(Message.MessageType.ADD_PROVIDER).setKey(ByteString.copyFrom(key))
            .addAllProviderPeers(peerInfos(List.of(host.peerId()), p)).build();
        sends.add(KadRpc.request(host, p, m).handle((r, e) -> e == null));
      }
      return CompletableFuture.allOf(sends.toArray(new CompletableFuture[0]))
          .thenApply(x -> (int) sends.stream().filter(CompletableFuture::join).count());
    });
  }

  /** Withdraws our own provider record locally (remote records expire with their TTL). */
  public void stopProviding(byte[] key) {
    stores.removeProvider(key, host.peerId());
  }

  /** Providers of {@code key}: local ones first, then from a GET_PROVIDERS lookup, up to {@code want}. */
  public CompletableFuture<List<PeerId>> findProviders(byte[] key, int want) {
    Set<PeerId> found = new LinkedHashSet<>(stores.providers(key));
    if (found.size() >= want) {
      return CompletableFuture.completedFuture(List.copyOf(found));
    }
    return new Lookup(key, Message.MessageType.GET_PROVIDERS, want).withProviders(found).run()
        .thenApply(l -> List.copyOf(found));
  }

  /** Validates, stores locally and sends to the closest peers; returns how many accepted it. */
  public CompletableFuture<Integer> putValue(byte[] key, byte[] value) {
    stores.putRecord(key, value);
    Message m = Message.newBuilder().setType(Message.MessageType.PUT_VALUE).setKey(ByteString.copyFrom(key))
        .setRecord(Record.newBuilder().setKey(ByteString.copyFrom(key)).setValue(ByteString.copyFrom(value))).build();
    return closestPeers(key).thenCompose(peers -> {
      List<CompletableFuture<Boolean>> puts = new ArrayList<>();
      for (PeerId p : peers) {
        puts.add(KadRpc.request(host, p, m).handle((r, e) -> e == null));
      }
      return CompletableFuture.allOf(puts.toArray(new CompletableFuture[0]))
          .thenApply(x -> (int) puts.stream().filter(CompletableFuture::join).count());
    });
  }

  /** A valid value for {@code key}: local, else the first valid one a GET_VALUE lookup finds. */
  public CompletableFuture<byte[]> getValue(byte[] key) {
    KadStores.StoredRecord local = stores.record(key);
    if (local != null) {
      return CompletableFuture.completedFuture(local.value());
    }
    return new Lookup(key, Message.MessageType.GET_VALUE, 1).run().thenApply(l -> l.value);
  }

  /**
   * One iterative lookup: keeps the K closest candidates, queries up to ALPHA unqueried ones at a
   * time, and ends when the K closest have all answered or failed (or an early stop is met).
   */
  private final class Lookup {
    private final byte[] key;
    private final KadKey target;
    private final Message.MessageType type;
    private final int wantProviders;
    private final List<PeerId> candidates = new ArrayList<>();
    private final Set<PeerId> queried = new LinkedHashSet<>();
    private final Set<PeerId> answered = new LinkedHashSet<>();
    private final CompletableFuture<Lookup> done = new CompletableFuture<>();
    private Set<PeerId> providers = new LinkedHashSet<>();
    private PeerId seek;
    private int inFlight;
    byte[] value;

    Lookup(byte[] key, Message.MessageType type, int wantProviders) {
      this.key = key;
      this.target = KadKey.of(key);
      this.type = type;
      this.wantProviders = wantProviders;
    }

    Lookup stopWhenSeen(PeerId p) {
      seek = p;
      return this;
    }

    Lookup withProviders(Set<PeerId> sink) {
      providers = sink;
      return this;
    }

    CompletableFuture<Lookup> run() {
      synchronized (this) {
        table.closest(target, RoutingTable.K).forEach(this::addCandidate);
        step();
      }
      return done.orTimeout(LOOKUP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void addCandidate(PeerId p) {
      if (!p.equals(host.peerId()) && !candidates.contains(p)) {
        candidates.add(p);
        candidates.sort((a, b) -> target.compareDistance(KadKey.of(a.toBytes()), KadKey.of(b.toBytes())));
      }
    }

    private boolean finished() {
      if (seek != null && !host.peerStore().addrs(seek).isEmpty()) {
        return true;
      }
      if (wantProviders > 0 && type == Message.MessageType.GET_PROVIDERS && providers.size() >= wantProviders) {
        return true;
      }
      return type == Message.MessageType.GET_VALUE && value != null;
    }

    private void step() {
      if (done.isDone()) {
        return;
      }
      if (finished()) {
        done.complete(this);
        return;
      }
      List<PeerId> top = candidates.subList(0, Math.min(RoutingTable.K, candidates.size()));
      for (PeerId p : List.copyOf(top)) {
        if (inFlight >= ALPHA) {
          break;
        }
        if (queried.add(p)) {
          inFlight++;
          Message req = Message.newBuilder().setType(type).setKey(ByteString.copyFrom(key)).build();
          KadRpc.request(host, p, req).whenComplete((resp, err) -> onAnswer(p, resp, err));
        }
      }
      if (inFlight == 0) {
        done.complete(this);
      }
    }

    private synchronized void onAnswer(PeerId from, Message resp, Throwable err) {
      inFlight--;
      if (err != null) {
        candidates.remove(from);
        // An unresponsive peer would be handed to every lookup again: it leaves the table, and
        // comes back when it next identifies as a DHT server.
        if (table.contains(from)) {
          table.remove(from);
          log.info("dht removed unresponsive peer={}: {}", from, err.getMessage());
        }
      } else {
        answered.add(from);
        for (Message.Peer p : resp.getCloserPeersList()) {
          try {
            PeerId id = PeerId.fromBytes(p.getId().toByteArray());
            host.peerStore().addAddrs(id, addrs(p));
            addCandidate(id);
          } catch (ProtocolViolationException ignored) {
            // a malformed peer entry: skip it
          }
        }
        for (Message.Peer p : resp.getProviderPeersList()) {
          try {
            PeerId id = PeerId.fromBytes(p.getId().toByteArray());
            host.peerStore().addAddrs(id, addrs(p));
            providers.add(id);
          } catch (ProtocolViolationException ignored) {
            // as above
          }
        }
        if (type == Message.MessageType.GET_VALUE && resp.hasRecord() && value == null) {
          try {
            byte[] v = resp.getRecord().getValue().toByteArray();
            stores.validator(key).validate(key, v);
            value = v;
          } catch (ProtocolViolationException e) {
            log.info("invalid record for key from {}: {}", from, e.getMessage());
          }
        }
      }
      step();
    }

    List<PeerId> closestAnswered() {
      List<PeerId> out = new ArrayList<>(answered);
      out.sort((a, b) -> target.compareDistance(KadKey.of(a.toBytes()), KadKey.of(b.toBytes())));
      return out.subList(0, Math.min(RoutingTable.K, out.size()));
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
    host.removeStreamHandler(PROTOCOL);
  }
}
