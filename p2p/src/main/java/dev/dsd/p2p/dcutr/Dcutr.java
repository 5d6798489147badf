package dev.dsd.p2p.dcutr;

import com.google.protobuf.ByteString;
import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.core.ProtocolViolationException;
import dev.dsd.p2p.dcutr.proto.DcutrProto.HolePunch;
import dev.dsd.p2p.framing.ProtobufFrameDecoder;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.host.Stream;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.channel.ChannelHandlerContext;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Direct Connection Upgrade through Relay ({@value #ID}, specs relay/DCUtR.md). When a relayed
 * connection comes in, this side (B, the DCUtR initiator) opens a stream on it and, per attempt:
 *
 * <pre>
 *   B ──CONNECT(B's addrs)──► A        B starts an RTT clock
 *   B ◄──CONNECT(A's addrs)── A        rtt = now - start
 *   B ──SYNC──► A                      A dials B's addrs at once; B dials A's addrs after rtt/2
 * </pre>
 *
 * Both dials leave from the listen port (SO_REUSEPORT), so each side's SYN opens its own NAT's
 * mapping for the other's: TCP simultaneous open. Roles of the upgraded connection are fixed by
 * DCUtR, not by the TCP handshake: A, who dials first, is the security and muxer initiator. That
 * also holds when one side's SYN simply lands on the other's listener (on loopback, or one side is
 * public): the listener upgrades a connection from an address it is hole punching with the role DCUtR
 * gave it, and its own dial of the same address pair fails harmlessly (see the host's hole-punch dial).
 * Whichever connection comes up ends the attempt. Up to
 * {@link #MAX_ATTEMPTS} attempts on the same stream. Once a direct connection exists the host uses
 * it for new streams, and the relayed connection is closed as soon as no stream is left on it.
 * Limits: {@link #MAX_MESSAGE} bytes per message, {@link #MAX_ADDRS} addresses taken from a peer,
 * {@link #ATTEMPT_TIMEOUT} per attempt.
 */
public final class Dcutr implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Dcutr.class);
  public static final String ID = "/libp2p/dcutr";
  /** The spec's bound for one RPC message. */
  public static final int MAX_MESSAGE = 4096;
  public static final int MAX_ATTEMPTS = 3;
  public static final int MAX_ADDRS = 16;
  public static final Duration ATTEMPT_TIMEOUT = Duration.ofSeconds(5);
  /** Observed addresses remembered (identify's observedAddr from direct connections). */
  public static final int MAX_OBSERVED = 8;
  /** How often an idle relayed connection is looked at once a direct one exists. */
  public static final Duration RELAYED_IDLE_CHECK = Duration.ofSeconds(1);
  /**
   * Sessions per relayed connection, and the pause between them. A session can fail for reasons
   * that pass (both SYNs crossing in flight and dropped by both NATs, a NAT entry still held by a
   * plain dial); a relayed connection that lasts gets another try, a bounded number of times.
   */
  public static final int MAX_SESSIONS = 3;
  public static final Duration SESSION_RETRY_AFTER = Duration.ofSeconds(3);

  private final NettyHost host;
  private final ScheduledExecutorService timer;
  private final Set<Multiaddr> observed = new LinkedHashSet<>();
  private final java.util.Map<PeerId, List<Connection>> relayed = new java.util.concurrent.ConcurrentHashMap<>();
  // Both peers may each hold an inbound relayed connection (they dialed each other at once) and so
  // both initiate: two hole punches on one 4-tuple give a connection with clashing Noise roles.
  // One session per pair: the peer whose id sorts first keeps the initiator's role.
  private final java.util.Map<PeerId, Attempts> initiating = new java.util.concurrent.ConcurrentHashMap<>();
  private final Set<PeerId> responding = java.util.concurrent.ConcurrentHashMap.newKeySet();

  private Dcutr(NettyHost host) {
    this.host = host;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "dsd-dcutr");
      t.setDaemon(true);
      return t;
    });
  }

  /** Serves {@value #ID} and upgrades every inbound relayed connection of {@code host}. */
  public static Dcutr install(NettyHost host) {
    Dcutr d = new Dcutr(host);
    host.setStreamHandler(ID, d::respond);
    host.onIdentify(i -> {
      if (i.observedAddr() != null && !i.observedAddr().isCircuit()) {
        synchronized (d.observed) {
          d.observed.remove(i.observedAddr());
          d.observed.add(i.observedAddr());
          while (d.observed.size() > MAX_OBSERVED) {
            d.observed.remove(d.observed.iterator().next());
          }
        }
      }
    });
    host.onDisconnect(c -> {
      if (c.relayed()) {
        d.relayed.computeIfPresent(c.remotePeer(), (p, l) -> {
          l.remove(c);
          return l.isEmpty() ? null : l;
        });
      }
    });
    host.onConnect(c -> {
      if (c.relayed()) {
        d.relayed.computeIfAbsent(c.remotePeer(), p -> new java.util.concurrent.CopyOnWriteArrayList<>()).add(c);
      }
      if (c.relayed() && !c.outbound()) {
        d.timer.execute(() -> d.initiate(c));
      }
      if (!c.relayed()) {
        d.logUpgrade(c);
        Attempts a = d.initiating.get(c.remotePeer());
        if (a != null) {
          // on the loop the session's stream runs on, as everything else of it
          Stream st = a.stream;
          (st != null ? st.channel().eventLoop() : c.channel().eventLoop()).execute(() -> a.direct(c));
        }
        d.closeRelayedWhenIdle(c.remotePeer());
      }
    });
    return d;
  }

  /**
   * What we tell the remote to dial: addresses observed on our connections first, then our own
   * non-relay ones, then the public addresses identify confirmed (listen port): AutoNAT drops those
   * from what we advertise when nobody could dial them, which behind NAT is exactly when DCUtR needs them.
   */
  List<Multiaddr> ourAddrs() {
    List<Multiaddr> out = new ArrayList<>();
    List<Multiaddr> recent = new ArrayList<>();
    synchronized (observed) {
      List<Multiaddr> o = new ArrayList<>(observed);
      for (int i = o.size() - 1; i >= 0; i--) {
        recent.add(o.get(i));
      }
    }
    // Our hole-punch dial leaves from the listen port, so the NAT mapping the peer must aim at is
    // that port's: on a port-preserving NAT (Linux masquerade, most home routers) the observed IP
    // with our listen port. A port observed on a connection dialed from an ephemeral port (before
    // the node knew it was behind NAT) maps nothing the punch uses; it stays, after these.
    for (Multiaddr o : recent) {
      for (Multiaddr l : host.listenAddrs()) {
        Multiaddr c = withPortOf(o, l);
        if (c != null && !out.contains(c)) {
          out.add(c);
        }
      }
    }
    recent.stream().filter(a -> !out.contains(a)).forEach(out::add);
    host.advertisedAddrs().stream().filter(a -> !a.isCircuit() && !out.contains(a)).forEach(out::add);
    host.addrs().observed().stream().filter(a -> !out.contains(a)).forEach(out::add);
    return out.size() > MAX_ADDRS ? out.subList(0, MAX_ADDRS) : out;
  }

  /** {@code observed}'s IP with {@code listen}'s TCP port, when both are TCP over the same IP family. */
  static Multiaddr withPortOf(Multiaddr observed, Multiaddr listen) {
    try {
      var ip = observed.components().get(0);
      if (ip.protocol() != listen.components().get(0).protocol()) {
        return null;
      }
      observed.toInetSocketAddress(); // TCP only
      int port = listen.toInetSocketAddress().getPort();
      return Multiaddr.parse("/" + ip.protocol().name + "/" + ip.valueString() + "/tcp/" + port);
    } catch (RuntimeException e) {
      return null;
    }
  }

  private HolePunch connectMessage() {
    HolePunch.Builder b = HolePunch.newBuilder().setType(HolePunch.Type.CONNECT);
    ourAddrs().forEach(a -> b.addObsAddrs(ByteString.copyFrom(a.withoutPeer().toBytes())));
    return b.build();
  }

  static List<Multiaddr> dialable(HolePunch m) {
    List<Multiaddr> out = new ArrayList<>();
    for (ByteString b : m.getObsAddrsList()) {
      if (out.size() >= MAX_ADDRS) {
        break;
      }
      try {
        Multiaddr a = Multiaddr.fromBytes(b.toByteArray()).withoutPeer();
        a.toInetSocketAddress(); // TCP only
        if (!a.isCircuit() && !out.contains(a)) {
          out.add(a);
        }
      } catch (RuntimeException ignored) {
        // a transport dsd does not dial (quic, ws) or not an address: skipped
      }
    }
    return out;
  }

  /** B: the side the relayed connection came in to drives the upgrade. */
  private void initiate(Connection relayed) {
    initiate(relayed, 1);
  }

  private void initiate(Connection relayed, int session) {
    PeerId peer = relayed.remotePeer();
    if (!relayed.isOpen() || hasDirect(peer) || responding.contains(peer)) {
      return; // nothing to do, or the peer already drives a hole punch with us
    }
    Attempts a = new Attempts(peer, relayed, session);
    if (initiating.putIfAbsent(peer, a) != null) {
      return;
    }
    host.newStream(peer, List.of(ID), s -> {
      a.stream = s;
      if (a.done) {
        s.channel().close(); // yielded to the peer's session meanwhile
        return;
      }
      s.channel().pipeline().addLast(new ProtobufFrameDecoder<>(HolePunch.parser(), MAX_MESSAGE, a::onReply,
          (ctx, e) -> a.fail("bad message: " + e.getMessage())));
      s.channel().closeFuture().addListener(f -> a.fail("stream closed"));
      s.channel().eventLoop().execute(a::connect);
    }).exceptionally(e -> {
      log.info("dcutr peer={} cannot open a stream: {}", peer, e.getMessage());
      a.done = true;
      initiating.remove(peer, a);
      return null;
    });
  }

  /** Whether we keep the initiator's role when both sides initiate at once. */
  private boolean keepsInitiator(PeerId peer) {
    return host.peerId().toBase58().compareTo(peer.toBase58()) < 0;
  }

  private final class Attempts {
    final PeerId peer;
    final long begin = System.nanoTime();
    Stream stream;
    int attempt;
    long sentAt;
    volatile boolean done;
    io.netty.util.concurrent.ScheduledFuture<?> timeout;

    final Connection relayed;
    final int session;

    Attempts(PeerId peer, Connection relayed, int session) {
      this.peer = peer;
      this.relayed = relayed;
      this.session = session;
    }

    void connect() {
      attempt++;
      sentAt = System.nanoTime();
      log.debug("dcutr connect sent peer={} session={} attempt={} addrs={}", peer, session, attempt, ourAddrs());
      stream.channel().writeAndFlush(ProtobufFrameDecoder.encode(connectMessage()));
      timeout = stream.channel().eventLoop().schedule(() -> retry("no answer within " + ATTEMPT_TIMEOUT.toMillis() + " ms"),
          ATTEMPT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    }

    void onReply(ChannelHandlerContext ctx, HolePunch m) {
      if (done) {
        return;
      }
      if (m.getType() != HolePunch.Type.CONNECT) {
        fail("expected CONNECT, got " + m.getType());
        stream.channel().close();
        return;
      }
      long rtt = System.nanoTime() - sentAt;
      timeout.cancel(false); // answered: the dials below have their own timeout
      List<Multiaddr> addrs = dialable(m);
      log.debug("dcutr connect answered peer={} attempt={} rttMs={} theirAddrs={}", peer, attempt, rtt / 1_000_000,
          addrs);
      host.abortListenPortDials(addrs); // before SYNC: the peer's SYN must not meet an ordinary dial of ours
      stream.channel().writeAndFlush(ProtobufFrameDecoder.encode(HolePunch.newBuilder().setType(HolePunch.Type.SYNC).build()));
      if (addrs.isEmpty()) {
        fail("the peer gave no address to dial");
        stream.channel().close();
        return;
      }
      stream.channel().eventLoop().schedule(() -> dialAll(peer, addrs, false).whenComplete((c, e) ->
          stream.channel().eventLoop().execute(() -> {
            if (done) {
              return;
            }
            if (e == null || hasDirect(peer)) {
              done = true;
              timeout.cancel(false);
              log.info("dcutr direct peer={} attempt={} rttMs={} ms={} addr={}", peer, attempt, rtt / 1_000_000,
                  (System.nanoTime() - begin) / 1_000_000, c == null ? "inbound" : c.remoteAddr());
              stream.channel().close();
            } else {
              retry(e.getMessage());
            }
          })), rtt / 2, TimeUnit.NANOSECONDS);
    }

    /** A direct connection to the peer exists, whichever dial made it: the upgrade is done. */
    void direct(Connection c) {
      if (done) {
        return;
      }
      done = true;
      if (timeout != null) {
        timeout.cancel(false);
      }
      log.info("dcutr direct peer={} attempt={} ms={} addr={} direction={}", peer, attempt,
          (System.nanoTime() - begin) / 1_000_000, c.remoteAddr(), c.outbound() ? "out" : "in");
      if (stream != null) {
        stream.channel().close();
      }
      initiating.remove(peer, this);
    }

    void retry(String why) {
      if (done) {
        return;
      }
      if (hasDirect(peer)) {
        done = true;
        stream.channel().close();
        return;
      }
      timeout.cancel(false);
      if (attempt >= MAX_ATTEMPTS) {
        fail("attempt " + attempt + ": " + why);
        stream.channel().close();
        return;
      }
      log.info("dcutr retry peer={} attempt={} reason={}", peer, attempt, why);
      connect();
    }

    void fail(String why) {
      if (!done) {
        done = true;
        if (timeout != null) {
          timeout.cancel(false);
        }
        initiating.remove(peer, this);
        boolean again = session < MAX_SESSIONS && relayed.isOpen() && !timer.isShutdown();
        log.info("dcutr failed peer={} session={} attempts={} reason={}; staying on the relay{}", peer, session, attempt,
            why, again ? ", another session in " + SESSION_RETRY_AFTER.toMillis() + " ms" : "");
        if (again) {
          try {
            timer.schedule(() -> initiate(relayed, session + 1), SESSION_RETRY_AFTER.toMillis(), TimeUnit.MILLISECONDS);
          } catch (java.util.concurrent.RejectedExecutionException closing) {
            // closed meanwhile
          }
        }
      }
      initiating.remove(peer, this);
    }

    /** The peer initiated too and keeps the role: our session gives way to theirs. */
    void yieldTo() {
      done = true;
      if (timeout != null) {
        timeout.cancel(false);
      }
      log.info("dcutr peer={} initiated at the same time as us; we answer its session instead", peer);
      if (stream != null) {
        stream.channel().close();
      }
      initiating.remove(peer, this);
    }
  }

  /**
   * A: answer each CONNECT with ours, dial at once on SYNC. Only over a relayed connection (there
   * is nothing to upgrade otherwise) and at most {@link #MAX_ATTEMPTS} times per stream, so a peer
   * cannot make us dial addresses of its choosing at will.
   */
  private void respond(Stream s) {
    PeerId peer = s.remotePeer();
    if (!(s.channel().parent() instanceof dev.dsd.p2p.yamux.YamuxStreamChannel)) {
      log.info("dcutr from {} refused: the connection is not relayed", peer);
      s.channel().close();
      return;
    }
    int[] syncs = {0};
    List<List<Multiaddr>> theirs = new ArrayList<>(1);
    s.channel().pipeline().addLast(new io.netty.channel.ChannelInboundHandlerAdapter() {
      @Override
      public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof io.netty.channel.socket.ChannelInputShutdownEvent) {
          ctx.close(); // the initiator is done: so are we, and the relayed connection can go idle
        }
        ctx.fireUserEventTriggered(evt);
      }
    });
    s.channel().pipeline().addLast(new ProtobufFrameDecoder<>(HolePunch.parser(), MAX_MESSAGE, (ctx, m) -> {
      if (m.getType() == HolePunch.Type.CONNECT) {
        Attempts mine = initiating.get(peer);
        if (theirs.isEmpty() && syncs[0] == 0 && mine != null && !mine.done) {
          if (keepsInitiator(peer)) {
            log.info("dcutr from {} refused: our own session with it goes on (simultaneous initiation)", peer);
            s.channel().close();
            return;
          }
          mine.yieldTo();
        }
        if (responding.add(peer)) {
          s.channel().closeFuture().addListener(f -> responding.remove(peer));
        }
        theirs.clear();
        theirs.add(dialable(m));
        host.abortListenPortDials(theirs.get(0)); // the initiator's SYN must not meet an ordinary dial of ours
        s.channel().writeAndFlush(ProtobufFrameDecoder.encode(connectMessage()));
      } else if (m.getType() == HolePunch.Type.SYNC && !theirs.isEmpty()) {
        if (++syncs[0] > MAX_ATTEMPTS) {
          throw new dev.dsd.p2p.core.LimitExceededException("dcutr attempts on one stream", syncs[0], MAX_ATTEMPTS);
        }
        List<Multiaddr> addrs = theirs.remove(0);
        log.debug("dcutr sync peer={} role=responder dialing={}", peer, addrs);
        dialAll(peer, addrs, true).whenComplete((c, e) -> log.info("dcutr dial peer={} role=responder result={}",
            peer, e == null ? "direct " + c.remoteAddr() : e.getMessage()));
      } else {
        throw new ProtocolViolationException("dcutr " + m.getType() + " out of order");
      }
    }, (ctx, e) -> {
      log.info("dcutr from {} refused: {}", peer, e.getMessage());
      s.channel().close();
    }));
  }

  /** Dials every address at once; the first connection wins. */
  private CompletableFuture<Connection> dialAll(PeerId peer, List<Multiaddr> addrs, boolean initiator) {
    CompletableFuture<Connection> first = new CompletableFuture<>();
    int[] failures = {0};
    for (Multiaddr a : addrs) {
      host.dialHolePunch(a, peer, initiator).whenComplete((c, e) -> {
        log.debug("dcutr dial peer={} addr={} result={}", peer, a, e == null ? "connected" : e.getMessage());
        if (e == null) {
          if (!first.complete(c)) {
            c.channel().close(); // another address won
          }
        } else {
          synchronized (failures) {
            if (++failures[0] == addrs.size()) {
              first.completeExceptionally(new P2pException("no direct path to " + peer + " at " + addrs + ": "
                  + e.getMessage()));
            }
          }
        }
      });
    }
    return first;
  }

  private boolean hasDirect(PeerId peer) {
    return host.connections().stream().anyMatch(c -> c.remotePeer().equals(peer) && !c.relayed() && c.isOpen());
  }

  private static final java.time.format.DateTimeFormatter CLOCK = java.time.format.DateTimeFormatter.ofPattern(
      "HH:mm:ss.SSS");

  /**
   * One line per relayed connection made direct: when its first stream began, when the direct
   * connection came up, and the time between (the goal: 5 s). Logged by both peers.
   */
  private void logUpgrade(Connection direct) {
    long first = 0;
    for (Connection c : relayed.getOrDefault(direct.remotePeer(), List.of())) {
      long t = c.muxer().firstStreamMillis();
      if (t > 0 && (first == 0 || t < first)) {
        first = t;
      }
    }
    if (first == 0) {
      return; // no relayed connection in use: an ordinary direct connection
    }
    long now = System.currentTimeMillis();
    java.time.ZoneId zone = java.time.ZoneId.systemDefault();
    log.info("dcutr upgraded peer={} firstRelayedStream={} direct={} ms={} addr={} direction={}", direct.remotePeer(),
        CLOCK.format(java.time.Instant.ofEpochMilli(first).atZone(zone)),
        CLOCK.format(java.time.Instant.ofEpochMilli(now).atZone(zone)), now - first, direct.remoteAddr(),
        direct.outbound() ? "out" : "in");
  }

  /** Once a direct connection exists, the relayed ones to that peer go as soon as no stream is left on them. */
  private void closeRelayedWhenIdle(PeerId peer) {
    for (Connection c : relayed.getOrDefault(peer, List.of())) {
      c.channel().eventLoop().execute(() -> {
        if (!c.isOpen()) {
          return;
        }
        if (c.muxer().streamCount() == 0 && hasDirect(peer)) {
          log.info("relayed connection closed peer={} reason=direct connection exists", peer);
          c.channel().close();
        } else if (hasDirect(peer) && !timer.isShutdown()) {
          timer.schedule(() -> closeRelayedWhenIdle(peer), RELAYED_IDLE_CHECK.toMillis(), TimeUnit.MILLISECONDS);
        }
      });
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
