package dev.dsd.p2p.autonat;

import dev.dsd.p2p.autonat.AutoNatProtocol.DialResponse;
import dev.dsd.p2p.autonat.proto.AutoNatProto.Message.ResponseStatus;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.framing.FramedReply;
import dev.dsd.p2p.host.Connection;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.identify.IdentifyProtocol;
import dev.dsd.p2p.multiaddr.AddrScope;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * AutoNAT v1 on a host, both roles. As a server it answers dial requests ({@link AutoNatServer}).
 * As a client it asks each peer that serves AutoNAT (identify says so) to dial back the addresses we
 * believe we have, and concludes from the latest answer of each server ({@link AutoNatVerdict}):
 * PUBLIC or PRIVATE once {@code minAgreeing} distinct servers agree, then kept until as many say
 * otherwise. The verdict goes to {@link NettyHost#setReachability} (the DHT drops to client mode on
 * PRIVATE) and the addresses servers failed to dial stop being advertised. Answers older than
 * {@link #RESULT_TTL} are forgotten and the servers asked again every {@link #RECHECK}.
 */
public final class AutoNatService implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AutoNatService.class);
  /** The spec says more than 3; small swarms (a bootstrap and an entry) must decide with 2. */
  public static final int DEFAULT_MIN_AGREEING = 2;
  public static final Duration ASK_TIMEOUT = AutoNatServer.DIAL_BACK_TIMEOUT.plusSeconds(5);
  public static final Duration RECHECK = Duration.ofMinutes(5);
  public static final Duration RESULT_TTL = Duration.ofMinutes(30);

  private final NettyHost host;
  private final AutoNatVerdict verdict;
  private final Map<PeerId, Multiaddr> observedBy = new ConcurrentHashMap<>();
  private final Map<PeerId, CompletableFuture<DialResponse>> asking = new ConcurrentHashMap<>();
  private volatile List<Multiaddr> askedAbout = List.of();
  private volatile boolean closed;

  /**
   * @param serve whether to answer others' dial requests
   * @param minAgreeing distinct servers that must agree before the verdict changes
   */
  public AutoNatService(NettyHost host, boolean serve, int minAgreeing) {
    this.host = host;
    this.verdict = new AutoNatVerdict(minAgreeing, RESULT_TTL.toMillis());
    if (serve) {
      AutoNatServer server = new AutoNatServer(host);
      host.setStreamHandler(AutoNatProtocol.ID, server::serve);
    }
    host.onIdentify(this::onIdentify);
    host.onDisconnect(c -> observedBy.remove(c.remotePeer()));
    host.schedule(this::recheck, RECHECK.toMillis());
  }

  private void onIdentify(IdentifyProtocol.Info i) {
    if (i.observedAddr() != null) {
      observedBy.put(i.peer(), i.observedAddr());
    }
    if (i.protocols().contains(AutoNatProtocol.ID) && !verdict.hasFreshAnswer(i.peer(), System.currentTimeMillis())) {
      ask(i.peer()).exceptionally(e -> null);
    }
  }

  private void recheck() {
    if (closed || host.isClosing()) {
      return;
    }
    askConnected();
    host.schedule(this::recheck, RECHECK.toMillis());
  }

  private void askConnected() {
    for (Connection c : host.connections()) {
      if (host.peerStore().protocols(c.remotePeer()).contains(AutoNatProtocol.ID)) {
        ask(c.remotePeer()).exceptionally(e -> null);
      }
    }
  }

  /** The addresses we would ask {@code server} about: those it could reach, plus what it saw us at. */
  List<Multiaddr> candidatesFor(PeerId server) {
    Set<Multiaddr> out = new LinkedHashSet<>();
    Connection c = host.connections().stream().filter(x -> x.remotePeer().equals(server)).findFirst().orElse(null);
    AddrScope scope = c == null || c.relayed() ? AddrScope.PUBLIC : AddrScope.of(c.remoteAddr());
    for (Multiaddr a : host.addrs().candidates()) {
      if (AddrScope.of(a).reachableFrom(scope)) {
        out.add(a);
      }
    }
    Multiaddr seen = observedBy.get(server);
    // a server that sees us at its own IP (two addresses on one interface: the kernel picked its
    // address as our source) would be asked to dial itself
    boolean own = seen != null && c != null && !c.relayed() && sameIp(seen, c.remoteAddr());
    if (seen != null && !own && host.config().announce().isEmpty()) {
      // The spec lets a server add the observed address itself; we add it with our listen port.
      for (Multiaddr l : host.listenAddrs()) {
        Multiaddr m = withPortOf(seen, l);
        if (m != null) {
          out.add(m);
        }
      }
    }
    return new ArrayList<>(out);
  }

  /** Asks one server to dial us back (or joins the question in flight); the answer updates the verdict. */
  public CompletableFuture<DialResponse> ask(PeerId server) {
    List<Multiaddr> addrs = candidatesFor(server);
    if (addrs.isEmpty()) {
      return CompletableFuture.failedFuture(new IllegalStateException("no address to ask " + server + " about"));
    }
    CompletableFuture<DialResponse> answer = new CompletableFuture<>();
    CompletableFuture<DialResponse> running = asking.putIfAbsent(server, answer);
    if (running != null) {
      return running;
    }
    if (resetIfCandidatesChanged() && !closed && !host.isClosing()) {
      // the answers about our old addresses are gone: every connected server is asked about the new
      // ones, not only this one (else a verdict waits for new peers, or for the next recheck)
      host.schedule(this::askConnected, 0);
    }
    host.newStream(server, List.of(AutoNatProtocol.ID), s -> {
      FramedReply.read(s.channel(), AutoNatProtocol.MAX_MESSAGE, AutoNatProtocol::parseResponse,
          "autonat stream closed before an answer").whenComplete((r, e) -> {
            if (e != null) {
              answer.completeExceptionally(e);
            } else {
              answer.complete(r);
            }
          });
      s.channel().writeAndFlush(AutoNatProtocol.frame(AutoNatProtocol.dial(host.peerId(), addrs)));
    }).exceptionally(e -> {
      answer.completeExceptionally(e);
      return null;
    });
    return answer.orTimeout(ASK_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).whenComplete((r, e) -> {
      asking.remove(server, answer);
      if (r != null) {
        log.info("autonat answer server={} status={} addr={} asked={} text={}", server, r.status(), r.addr(), addrs,
            r.text());
        record(server, r, addrs);
      } else {
        log.debug("autonat ask of {} failed: {}", server, e.toString());
      }
    });
  }

  private void record(PeerId server, DialResponse r, List<Multiaddr> asked) {
    if (r.status() != ResponseStatus.OK && r.status() != ResponseStatus.E_DIAL_ERROR) {
      return; // refused or bad request: the server learnt nothing about us
    }
    boolean ok = r.status() == ResponseStatus.OK;
    // an OK names the address that worked; a failure covers what we asked (the server does not say which it tried)
    verdict.add(server, ok, ok && r.addr() != null ? List.of(r.addr()) : asked, System.currentTimeMillis());
    apply();
  }

  private void apply() {
    long now = System.currentTimeMillis();
    host.setReachability(verdict.reachability(now));
    host.addrs().setUndialable(host.reachability().isPrivate() ? verdict.undialable(now) : Set.of());
  }

  /** Whether the addresses changed since the last question, and earlier answers were forgotten. */
  private synchronized boolean resetIfCandidatesChanged() {
    List<Multiaddr> now = host.addrs().candidates();
    if (now.equals(askedAbout)) {
      return false;
    }
    boolean hadAsked = !askedAbout.isEmpty();
    askedAbout = now;
    if (hadAsked) {
      log.info("autonat: our addresses changed to {}; asking every connected server afresh", now);
      verdict.clearAnswers();
    }
    return hadAsked;
  }

  private static boolean sameIp(Multiaddr a, Multiaddr b) {
    try {
      return a.toInetSocketAddress().getHostString().equals(b.toInetSocketAddress().getHostString());
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static Multiaddr withPortOf(Multiaddr observed, Multiaddr listen) {
    Multiaddr.Component ip = observed.components().get(0);
    Multiaddr.Component lip = listen.components().get(0);
    if (ip.protocol() != lip.protocol()) {
      return null;
    }
    try {
      return Multiaddr.parse("/" + ip.protocol().name + "/" + ip.valueString() + "/tcp/"
          + listen.toInetSocketAddress().getPort());
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  @Override
  public void close() {
    closed = true;
    host.removeStreamHandler(AutoNatProtocol.ID);
  }
}
