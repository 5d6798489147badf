package dev.dsd.node.metrics;

import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.TokenSink;
import java.util.Comparator;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.IntSupplier;

/**
 * What a node counts about the requests it serves, rendered for Prometheus by {@link #render()}.
 * Thread-safe: the HTTP event loop, generation threads and (later) the pipeline stages all write to
 * one instance.
 *
 * <p>Pitfall: label values become time series, so callers pass bounded sets (known routes, stage
 * names), never raw client input such as a request path.
 */
public final class NodeMetrics {
  /** Samples kept per stage for the median of recent latencies. */
  public static final int LATENCY_WINDOW = 128;
  /** Content-Type of {@link #render()}. */
  public static final String CONTENT_TYPE = PrometheusText.CONTENT_TYPE;

  private record RequestKey(String route, int status) {}

  private static final Comparator<RequestKey> REQUEST_ORDER =
      Comparator.comparing(RequestKey::route).thenComparingInt(RequestKey::status);

  private final Map<RequestKey, LongAdder> requests = new ConcurrentHashMap<>();
  private final Map<String, LongAdder> generations = new ConcurrentHashMap<>();
  private final Map<String, LatencySummary> stages = new ConcurrentHashMap<>();
  private final LongAdder generatedTokens = new LongAdder();
  private final LongAdder promptTokens = new LongAdder();
  private final LongAdder rounds = new LongAdder();
  private final LongAdder draftedTokens = new LongAdder();
  private final LongAdder acceptedTokens = new LongAdder();
  private final LongAdder bytesSent = new LongAdder();
  private final LongAdder failovers = new LongAdder();
  private final LongAdder spotChecks = new LongAdder();
  private final LongAdder bannedPeers = new LongAdder();
  private final LatencySummary failoverStalls = new LatencySummary(LATENCY_WINDOW);
  private final AtomicInteger activeSessions = new AtomicInteger();
  private volatile double lastTokensPerSecond;
  private final Histogram queueWait = new Histogram(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30);
  private final Histogram firstToken = new Histogram(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30);
  private final Histogram interToken = new Histogram(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2);
  private volatile IntSupplier queueDepth = () -> 0;
  private volatile Histogram stageBatchRows = new Histogram(1);

  /** How long a request waited for a generation slot. */
  public void recordQueueWait(double seconds) {
    queueWait.record(seconds);
  }

  /** Where the queue depth gauge reads from (the node's generation queue). */
  public void queueDepth(IntSupplier depth) {
    queueDepth = depth;
  }

  /** The node's stages' rows-per-call histogram, rendered as {@code dsd_stage_batch_rows}. */
  public void stageBatchRows(Histogram rows) {
    stageBatchRows = rows;
  }

  /**
   * Wraps a generation's sink to record time to first token (from {@code startNanos}, when the
   * request arrived, so time in the queue counts) and the latency between tokens (a chunk of n
   * tokens that came after a gap g counts n gaps of g/n: speculation delivers tokens in bursts).
   */
  public TokenSink timed(TokenSink sink, long startNanos) {
    long[] last = {0};
    return (text, ids) -> {
      long now = System.nanoTime();
      int n = Math.max(1, ids.length);
      if (last[0] == 0) {
        firstToken.record(Math.max(0, now - startNanos) / 1e9);
        for (int i = 1; i < n; i++) {
          interToken.record(0);
        }
      } else {
        double gap = (now - last[0]) / 1e9 / n;
        for (int i = 0; i < n; i++) {
          interToken.record(gap);
        }
      }
      last[0] = now;
      return sink.accept(text, ids);
    };
  }

  private volatile java.util.function.LongSupplier relayedBytes;
  private volatile java.util.function.IntSupplier relayCircuits;
  private volatile java.util.function.IntSupplier relayReservations;
  private volatile java.util.function.IntSupplier directPeers;
  private volatile java.util.function.IntSupplier relayedPeers;

  /** The relay service's counters (only on a node that offers relay service). */
  public void relay(java.util.function.LongSupplier bytes, java.util.function.IntSupplier circuits,
      java.util.function.IntSupplier reservations) {
    this.relayedBytes = bytes;
    this.relayCircuits = circuits;
    this.relayReservations = reservations;
  }

  /** Connections open now, reached directly and only through a relay. */
  public void peers(java.util.function.IntSupplier direct, java.util.function.IntSupplier relayed) {
    this.directPeers = direct;
    this.relayedPeers = relayed;
  }

  /** One answered request; {@code status} is the HTTP status (499 when the client left first). */
  public void recordRequest(String route, int status) {
    requests.computeIfAbsent(new RequestKey(route, status), k -> new LongAdder()).increment();
  }

  /** One finished generation, whatever its finish reason. */
  public void record(GenerationResult r) {
    generations.computeIfAbsent(r.finishReason(), k -> new LongAdder()).increment();
    generatedTokens.add(r.tokenIds().length);
    promptTokens.add(r.promptTokens());
    rounds.add(r.rounds());
    draftedTokens.add(r.draftedTokens());
    acceptedTokens.add(r.acceptedTokens());
    bytesSent.add(r.bytesSent());
    lastTokensPerSecond = r.tokensPerSecond();
  }

  /**
   * What one generation's pipeline survived: failovers to other peers, the longest pause they
   * caused the client, and the spot checks run on its stages.
   */
  public void recordResilience(int failoversDone, long longestStallNanos, int spotChecksDone) {
    failovers.add(failoversDone);
    spotChecks.add(spotChecksDone);
    if (failoversDone > 0 && longestStallNanos > 0) {
      failoverStalls.record(longestStallNanos / 1e9);
    }
  }

  /** A peer caught returning wrong activations. */
  public void peerBanned() {
    bannedPeers.increment();
  }

  /** Time one pipeline stage took for one round (e.g. a peer's forward pass plus its link). */
  public void recordStageLatency(String stage, double seconds) {
    stages.computeIfAbsent(stage, s -> new LatencySummary(LATENCY_WINDOW)).record(seconds);
  }

  public void sessionStarted() {
    activeSessions.incrementAndGet();
  }

  public void sessionEnded() {
    activeSessions.decrementAndGet();
  }

  public int activeSessions() {
    return activeSessions.get();
  }

  public long generatedTokens() {
    return generatedTokens.sum();
  }

  public long requests(String route, int status) {
    LongAdder n = requests.get(new RequestKey(route, status));
    return n == null ? 0 : n.sum();
  }

  /** Accepted / drafted over all generations; 0 before anything was drafted. */
  public double acceptanceRate() {
    long drafted = draftedTokens.sum();
    return drafted == 0 ? 0 : (double) acceptedTokens.sum() / drafted;
  }

  /** The Prometheus text exposition format, families in a fixed order and series sorted by label. */
  public String render() {
    PrometheusText p = new PrometheusText();
    p.family("dsd_http_requests_total", "counter", "HTTP requests answered, by route and status");
    Map<RequestKey, LongAdder> req = new TreeMap<>(REQUEST_ORDER);
    req.putAll(requests);
    req.forEach((k, n) -> p.sample("dsd_http_requests_total", n.sum(), "route", k.route(), "status",
        Integer.toString(k.status())));
    p.family("dsd_generations_total", "counter", "Generations finished, by finish reason");
    new TreeMap<>(generations).forEach((reason, n) ->
        p.sample("dsd_generations_total", n.sum(), "finish_reason", reason));
    counter(p, "dsd_generated_tokens_total", "Tokens generated", generatedTokens);
    counter(p, "dsd_prompt_tokens_total", "Prompt tokens processed", promptTokens);
    counter(p, "dsd_rounds_total", "Target passes (verification rounds)", rounds);
    counter(p, "dsd_drafted_tokens_total", "Draft tokens proposed", draftedTokens);
    counter(p, "dsd_accepted_tokens_total", "Draft tokens the target accepted", acceptedTokens);
    counter(p, "dsd_bytes_sent_total", "Bytes sent between peers for generations", bytesSent);
    p.family("dsd_acceptance_rate", "gauge", "Accepted / drafted tokens over all generations")
        .sample("dsd_acceptance_rate", acceptanceRate());
    p.family("dsd_last_tokens_per_second", "gauge", "Generated tokens per second of the last generation")
        .sample("dsd_last_tokens_per_second", lastTokensPerSecond);
    p.family("dsd_active_sessions", "gauge", "Generations running now")
        .sample("dsd_active_sessions", activeSessions.get());
    counter(p, "dsd_failovers_total", "Rounds re-run on another route after a stage failed", failovers);
    p.family("dsd_failover_stall_seconds", "summary", "Longest pause failovers caused in a generation; the quantile is "
        + "over the last " + LATENCY_WINDOW + " generations that failed over");
    if (failoverStalls.count() > 0) {
      p.sample("dsd_failover_stall_seconds", failoverStalls.median(), "quantile", "0.5");
    }
    p.sample("dsd_failover_stall_seconds_sum", failoverStalls.sum());
    p.sample("dsd_failover_stall_seconds_count", failoverStalls.count());
    counter(p, "dsd_spot_checks_total", "Rounds re-run on a replica to check a stage's activations", spotChecks);
    counter(p, "dsd_peers_banned_total", "Peers banned for returning wrong activations", bannedPeers);
    p.family("dsd_stage_latency_seconds", "summary",
        "Latency of one round through a pipeline stage; the quantile is over the last " + LATENCY_WINDOW + " rounds");
    new TreeMap<>(stages).forEach((stage, s) -> {
      p.sample("dsd_stage_latency_seconds", s.median(), "stage", stage, "quantile", "0.5");
      p.sample("dsd_stage_latency_seconds_sum", s.sum(), "stage", stage);
      p.sample("dsd_stage_latency_seconds_count", s.count(), "stage", stage);
    });
    p.family("dsd_queue_depth", "gauge", "Requests waiting for a generation slot")
        .sample("dsd_queue_depth", queueDepth.getAsInt());
    p.family("dsd_queue_wait_seconds", "histogram", "Time a request waited for a generation slot");
    queueWait.render(p, "dsd_queue_wait_seconds");
    p.family("dsd_time_to_first_token_seconds", "histogram", "From a request's arrival to its first token");
    firstToken.render(p, "dsd_time_to_first_token_seconds");
    p.family("dsd_inter_token_latency_seconds", "histogram", "Time between consecutive tokens of a generation");
    interToken.render(p, "dsd_inter_token_latency_seconds");
    p.family("dsd_stage_batch_rows", "histogram", "Sessions' rounds per ONNX Runtime call of this node's stages");
    stageBatchRows.render(p, "dsd_stage_batch_rows");
    if (directPeers != null) {
      p.family("dsd_peer_connections", "gauge", "Peer connections open now, by path (direct or through a relay)");
      p.sample("dsd_peer_connections", directPeers.getAsInt(), "path", "direct");
      p.sample("dsd_peer_connections", relayedPeers.getAsInt(), "path", "relayed");
    }
    if (relayedBytes != null) {
      p.family("dsd_relayed_bytes_total", "counter", "Bytes this relay carried between other peers, both directions")
          .sample("dsd_relayed_bytes_total", relayedBytes.getAsLong());
      p.family("dsd_relay_circuits", "gauge", "Relayed connections open through this relay now")
          .sample("dsd_relay_circuits", relayCircuits.getAsInt());
      p.family("dsd_relay_reservations", "gauge", "Peers holding a reservation on this relay now")
          .sample("dsd_relay_reservations", relayReservations.getAsInt());
    }
    return p.toString();
  }

  private static void counter(PrometheusText p, String name, String help, LongAdder value) {
    p.family(name, "counter", help).sample(name, value.sum());
  }
}
