package dev.dsd.node;

import dev.dsd.node.client.GenerateService;
import dev.dsd.node.entry.GenerationQueue;
import dev.dsd.node.http.HttpApiServer;
import dev.dsd.node.http.ServedModel;
import dev.dsd.node.metrics.NodeMetrics;
import dev.dsd.node.draft.DraftClient;
import dev.dsd.node.draft.DraftServer;
import dev.dsd.node.swarm.VocabId;
import dev.dsd.node.swarm.proto.DraftInfo;
import dev.dsd.node.generate.DraftModel;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.Generator;
import dev.dsd.node.generate.PromptLookupDrafter;
import dev.dsd.node.stage.HostedShard;
import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.entry.PipelineTargetPass;
import dev.dsd.node.swarm.InfoService;
import dev.dsd.node.swarm.RttTable;
import dev.dsd.node.swarm.SwarmKeys;
import dev.dsd.node.swarm.SwarmView;
import dev.dsd.node.swarm.proto.NodeInfo;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.kad.KadDht;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.relay.AutoRelay;
import dev.dsd.pipeline.config.ModelConfigLoader;
import dev.dsd.pipeline.model.ModelConfig;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A dsd node: a libp2p host with the DHT, the pipeline protocol (as a stage, if it serves layers,
 * and always as an entry), the info protocol, and the generate protocol through which clients
 * hand it prompts. It announces what it serves, keeps a view of the swarm and withdraws its
 * records when it stops.
 */
public final class Node implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Node.class);
  public static final Duration ANNOUNCE_INTERVAL = Duration.ofMinutes(10);
  public static final Duration VIEW_INTERVAL = Duration.ofSeconds(30);
  public static final Duration ASK_TIMEOUT = Duration.ofSeconds(5);
  /** How long a peer that failed a session is left out of new routes. */
  public static final Duration FAILED_PEER_BACKOFF = Duration.ofMinutes(2);
  private final Map<PeerId, Long> backoffUntil = new ConcurrentHashMap<>();
  private final Set<PeerId> banned = ConcurrentHashMap.newKeySet();

  private final NodeConfig config;
  private final NodeNetwork net;
  private final NettyHost host;
  private final KadDht dht;
  private final HostedShard shard;
  private final DraftModel draft;
  private final PipelineService pipeline;
  private final InfoService info;
  private final SwarmView view;
  private final ScheduledExecutorService timer;
  private final Map<String, PipelineGenerator> generators = new ConcurrentHashMap<>();
  private final DraftServer draftServer;
  private final NodeMetrics metrics;
  private volatile HttpApiServer http;
  private final GenerationQueue queue;
  private final String draftVocab;
  private final DraftClient draftClient;

  private Node(NodeConfig config, NodeNetwork net, NodeMetrics metrics, HostedShard shard, DraftModel draft) {
    this.config = config;
    this.net = net;
    this.host = net.host;
    this.dht = net.dht;
    this.metrics = metrics;
    this.shard = shard;
    this.draft = draft;
    this.pipeline = new PipelineService(host, shard == null ? List.of() : List.of(shard), Math.max(2, config.threads()),
        config.fault());
    RttTable rtts = new RttTable(host);
    this.draftServer = draft == null ? null
        : DraftServer.load(host, config.draft(), DraftServer.Options.defaults().withThreads(Math.max(1, config.threads())));
    this.draftVocab = draft == null ? null : VocabId.of(config.draft().resolve("tokenizer.json"));
    this.draftClient = new DraftClient(host, Duration.ofSeconds(20));
    this.info = new InfoService(host, pipeline, rtts, Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "dsd-info");
      t.setDaemon(true);
      return t;
    }), () -> draftServer == null ? List.of() : List.of(DraftInfo.newBuilder().setModelId(draftServer.modelId())
        .setVocabId(draftVocab).setSessions(draftServer.sessionCount()).build()));
    this.view = new SwarmView(host, dht, info, rtts);
    dev.dsd.node.http.HttpApiConfig httpCfg = config.http() != null ? config.http() : dev.dsd.node.http.HttpApiConfig.of(
        "127.0.0.1", 0);
    // one line for both front doors: HTTP clients and /dsd/generate/1.0.0 clients wait in the same queue
    this.queue = new GenerationQueue(httpCfg.maxConcurrentGenerations(), httpCfg.maxQueuedRequests(),
        metrics::recordQueueWait);
    metrics.queueDepth(queue::waiting);
    metrics.stageBatchRows(pipeline.stats().batchRows);
    new GenerateService(host, Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "dsd-generate");
      t.setDaemon(true);
      return t;
    }), queue, id -> timed(generator(id)));
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "dsd-node-timer");
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * Starts listening and joining the swarm (relay reservation included, behind NAT), loads the models
   * meanwhile, then serves them and announces.
   */
  public static Node start(NodeConfig c) {
    return start(c, RelayOptions.defaults());
  }

  /**
   * As {@link #start(NodeConfig)}, with relay service and reachability as {@code relay} says. The
   * network comes first: loading a shard takes seconds, and a node behind NAT is routable only once it
   * holds a relay reservation, which needs the bootstrap peers' identify and a round trip to the relay.
   * The node's own protocols (pipeline, info, generate) and its provider records come once the models
   * are loaded: until then a peer finds no shard here and routes no session to it.
   */
  public static Node start(NodeConfig c, RelayOptions relay) {
    NodeMetrics metrics = new NodeMetrics();
    NodeNetwork net = NodeNetwork.start(c, relay, metrics);
    HostedShard shard = null;
    DraftModel draft = null;
    try {
      RunnerOptions ro = RunnerOptions.defaults().withThreads(c.threads());
      if (c.maxSessions() > 0) {
        ro = new RunnerOptions(ro.intraOpThreads(), c.maxSessions(), ro.kvBudgetBytes(), ro.idleTimeout());
      }
      ro = ro.withWeights(c.weights()).withCacheDir(c.cacheDir() == null ? null : c.cacheDir().resolve("weights"));
      if (c.model() != null) {
        ModelConfig mc = ModelConfigLoader.load(c.model().resolve("config.json"));
        int to = c.to() < 0 ? mc.numLayers() : c.to();
        shard = HostedShard.load(c.model(), c.from(), to, ro, c.weights());
      }
      if (c.draft() != null) {
        Tokenizer t = Tokenizer.load(c.draft().resolve("tokenizer.json"));
        ModelConfig dc = ModelConfigLoader.load(c.draft().resolve("config.json"));
        draft = DraftModel.load(c.draft(), dc.vocabSize(), t.vocabSize(), c.threads());
        t.close();
      }
      Node n = new Node(c, net, metrics, shard, draft);
      try {
        n.join();
        if (c.http() != null) {
          n.startHttp(c.http());
        }
      } catch (RuntimeException e) {
        n.close();
        throw e;
      }
      return n;
    } catch (RuntimeException e) {
      net.close();
      if (shard != null) {
        shard.close();
      }
      if (draft != null) {
        draft.close();
      }
      throw e;
    }
  }

  /** Relay reservations: driven by AutoNAT's verdict (PRIVATE reserves) unless forced by {@link RelayOptions}. */
  public AutoRelay autoRelay() {
    return net.autoRelay;
  }

  private void join() {
    try {
      net.bootstrap().get(30, TimeUnit.SECONDS); // begun before the models loaded: usually done by now
    } catch (Exception e) {
      log.warn("bootstrap incomplete peers={}: {}", config.bootstrap(), e.toString());
    }
    List<byte[]> keys = new ArrayList<>();
    if (shard != null) {
      keys.add(SwarmKeys.anyModel());
      keys.add(SwarmKeys.model(shard.modelId()));
      keys.add(SwarmKeys.shard(shard.modelId(), shard.from(), shard.to()));
    }
    if (draftServer != null) {
      keys.add(SwarmKeys.draft(draftVocab));
    }
    // peers that identified us while the models loaded saw none of the node's protocols
    net.pushIdentify();
    net.provide(keys);
    timer.scheduleAtFixedRate(net::announce, ANNOUNCE_INTERVAL.toMillis(), ANNOUNCE_INTERVAL.toMillis(),
        TimeUnit.MILLISECONDS);
    timer.scheduleWithFixedDelay(() -> {
      try {
        view.refresh(ASK_TIMEOUT);
      } catch (RuntimeException e) {
        log.warn("swarm refresh failed: {}", e.toString());
      }
    }, 0, VIEW_INTERVAL.toMillis(), TimeUnit.MILLISECONDS);
    log.info("node up peer={} listen={} shard={} draft={}", host.peerId(), host.listenAddrs(), shard,
        draft == null ? "none" : draft.modelId().substring(0, 12));
  }

  /**
   * Serves the OpenAI-compatible API for the swarm's model. An entry without the model first waits
   * (up to a minute) until the swarm shows it one, since the API must know the context length and
   * the tokenizer.
   */
  private void startHttp(dev.dsd.node.http.HttpApiConfig cfg) {
    PipelineGenerator gen = null;
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    GenerationException last = null;
    while (gen == null && System.nanoTime() < deadline) {
      try {
        gen = (PipelineGenerator) generator("");
      } catch (GenerationException e) {
        last = e;
        view.refresh(ASK_TIMEOUT);
        try {
          Thread.sleep(500);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw e;
        }
      }
    }
    if (gen == null) {
      throw new GenerationException("cannot serve HTTP: " + (last == null ? "no model" : last.getMessage()));
    }
    PipelineGenerator g = gen;
    Path modelDir = shard != null ? shard.checkpoint().dir() : null;
    String name = shard != null ? shard.checkpoint().dir().getFileName().toString() : "dsd-swarm-model";
    Generator swarm = new Generator() {
      @Override
      public dev.dsd.node.generate.GenerationResult generate(dev.dsd.node.generate.GenerationRequest req,
          dev.dsd.node.generate.TokenSink sink) {
        return timed(generator("")).generate(req, sink); // routes on a fresh view each time
      }

      @Override
      public void close() { }
    };
    http = HttpApiServer.start(cfg, swarm, new ServedModel(name, g.config().maxPositionEmbeddings(), modelDir,
        text -> g.tokenizer().encode(text).length), metrics, queue);
    log.info("http api url={} model={}", http.url(), name);
  }

  /** The HTTP API's base URL, or null without --http. */
  public String httpUrl() {
    return http == null ? null : http.url();
  }

  /** Peers this node caught returning wrong activations. */
  public Set<PeerId> banned() {
    return Set.copyOf(banned);
  }

  public NodeMetrics metrics() {
    return metrics;
  }

  public NettyHost host() {
    return host;
  }

  public PeerId peerId() {
    return host.peerId();
  }

  public SwarmView view() {
    return view;
  }

  public PipelineService pipeline() {
    return pipeline;
  }

  /** Addresses others reach us by, each ending in /p2p/ our id. */
  public List<Multiaddr> addresses() {
    return host.advertisedAddrs().stream().map(a -> a.withPeer(host.peerId())).toList();
  }

  /**
   * The entry-side generator for a model ("" when the swarm serves one model): routes on a fresh
   * view of the swarm before every request, drafts here with the node's draft model, or with
   * prompt lookup when it has none.
   */
  public Generator generator(String modelId) {
    view.refreshIfOlder(Duration.ofSeconds(5), ASK_TIMEOUT);
    String id = modelId == null || modelId.isEmpty() ? onlyModel() : modelId;
    return generators.computeIfAbsent(id, this::newGenerator);
  }

  private String onlyModel() {
    if (shard != null) {
      return shard.modelId();
    }
    Set<String> models = view.models();
    if (models.isEmpty()) {
      throw new GenerationException("no peer in the swarm serves a model (known peers: " + view.nodes().size() + ")");
    }
    if (models.size() > 1) {
      throw new GenerationException("the swarm serves " + models.size() + " models; name one of " + models);
    }
    return models.iterator().next();
  }

  private PipelineGenerator newGenerator(String modelId) {
    Tokenizer tokenizer;
    ModelConfig mc;
    Path tokenizerFile;
    if (shard != null && shard.modelId().equals(modelId)) {
      tokenizer = shard.checkpoint().tokenizer();
      mc = shard.config();
      tokenizerFile = shard.checkpoint().dir().resolve("tokenizer.json");
    } else {
      Path dir = fetchModelFiles(modelId);
      tokenizerFile = dir.resolve("tokenizer.json");
      tokenizer = Tokenizer.load(tokenizerFile);
      mc = ModelConfigLoader.load(dir.resolve("config.json"));
    }
    String vocab = VocabId.of(tokenizerFile);
    PipelineGenerator.DrafterFactory drafters;
    String how;
    if (draft != null && vocab.equals(draftVocab)) {
      drafters = draft::newDrafter;
      how = "draft model here";
    } else {
      drafters = remoteDrafters(vocab);
      how = "draft node from the swarm, else prompt lookup";
    }
    log.info("entry ready model={} drafter={}", modelId.substring(0, 12), how);
    PipelineGenerator.RouteSource routes = new PipelineGenerator.RouteSource() {
      @Override
      public dev.dsd.node.routing.Route route(Set<PeerId> avoid) {
        return Node.this.route(modelId, avoid, null);
      }

      @Override
      public dev.dsd.node.routing.Route route(Set<PeerId> avoid, WeightFormat weights) {
        return Node.this.route(modelId, avoid, weights);
      }

      @Override
      public void failed(PeerId peer) {
        backoffUntil.put(peer, System.nanoTime() + FAILED_PEER_BACKOFF.toNanos());
        log.info("peer backed off peer={} seconds={}", peer, FAILED_PEER_BACKOFF.toSeconds());
      }

      @Override
      public void banned(PeerId peer) {
        if (banned.add(peer)) {
          metrics.peerBanned();
        }
        log.warn("peer banned peer={} reason=wrong activations", peer);
      }

      @Override
      public dev.dsd.node.routing.Route.Stage replica(dev.dsd.node.routing.Route route, int index, Set<PeerId> exclude) {
        var stage = route.stages().get(index);
        // a random replica each time, so that over many checks every replica gets compared; only one
        // of the route's format computes the same numbers
        var eligible = view.candidates(modelId).stream()
            .filter(c -> c.from() == stage.from() && c.to() == stage.to() && c.weights() == route.weights()
                && !exclude.contains(c.peer())
                && !banned.contains(c.peer()))
            .toList();
        if (eligible.isEmpty()) {
          return null;
        }
        var c = eligible.get(java.util.concurrent.ThreadLocalRandom.current().nextInt(eligible.size()));
        return new dev.dsd.node.routing.Route.Stage(c.peer(), c.addrs(), c.from(), c.to());
      }
    };
    return new PipelineGenerator(pipeline, tokenizer, mc, routes, drafters,
        PipelineTargetPass.Options.greedy()).withSpotChecks(config.spotCheck())
        // trees come from a draft here, else from prompt lookup while no draft node serves the vocabulary:
        // a draft node's batched protocol proposes chains, and its model's chains beat lookup trees
        .withTreeDrafters(draft != null && vocab.equals(draftVocab) ? draft::newTreeDrafter : lookupTrees(vocab))
        .withAdaptiveMaxGap(dev.dsd.node.generate.AdaptiveCalibration.maxGap(tokenizerFile.getParent()))
        .withStageTimes(metrics::recordStageLatency).withResilience(metrics::recordResilience);
  }

  /**
   * Drafting on a draft node of the swarm with the same tokenizer (the least loaded one at the time
   * of the request); prompt lookup when there is none.
   */
  private PipelineGenerator.DrafterFactory remoteDrafters(String vocab) {
    return (req, capacity, usable) -> {
      Map.Entry<PeerId, DraftInfo> best = leastLoadedDraftNode(vocab);
      if (best == null) {
        return new PromptLookupDrafter();
      }
      return draftClient.drafter(best.getKey(), host.peerStore().addrs(best.getKey()), best.getValue().getModelId(),
          req, capacity, usable);
    };
  }

  /** Prompt-lookup trees, for tree requests made while no draft node serves {@code vocab}. */
  private PipelineGenerator.TreeDrafterFactory lookupTrees(String vocab) {
    return new PipelineGenerator.TreeDrafterFactory() {
      @Override
      public dev.dsd.node.generate.tree.TreeDrafter create(dev.dsd.node.generate.GenerationRequest req, int capacity, int usableVocab) {
        return new dev.dsd.node.generate.tree.LookupTreeDrafter();
      }

      @Override
      public boolean serves(dev.dsd.node.generate.GenerationRequest req) {
        return leastLoadedDraftNode(vocab) == null;
      }
    };
  }

  /** The draft node of the swarm with {@code vocab} that serves the fewest sessions, or null. */
  private Map.Entry<PeerId, DraftInfo> leastLoadedDraftNode(String vocab) {
    Map.Entry<PeerId, DraftInfo> best = null;
    for (var e : view.nodes().entrySet()) {
      for (DraftInfo d : e.getValue().getDraftsList()) {
        if (d.getVocabId().equals(vocab) && !e.getKey().equals(host.peerId())
            && (best == null || d.getSessions() < best.getValue().getSessions())) {
          best = Map.entry(e.getKey(), d);
        }
      }
    }
    return best;
  }

  /**
   * A route on the current view avoiding this request's failed peers, banned peers and peers backed
   * off after failing another request. When that leaves a gap the view may be stale: look again
   * once. A back-off only ranks replicas: when nothing else covers a backed-off peer's layers, it is
   * tried again rather than the model being unusable for {@link #FAILED_PEER_BACKOFF}.
   */
  private dev.dsd.node.routing.Route route(String modelId, Set<PeerId> avoid, WeightFormat weights) {
    Set<PeerId> refused = new java.util.HashSet<>(avoid);
    refused.addAll(banned);
    Set<PeerId> all = new java.util.HashSet<>(refused);
    long now = System.nanoTime();
    backoffUntil.values().removeIf(until -> until - now <= 0);
    all.addAll(backoffUntil.keySet());
    try {
      return view.route(modelId, all, weights);
    } catch (dev.dsd.node.routing.NoRouteException e) {
      view.refresh(ASK_TIMEOUT);
      try {
        return view.route(modelId, all, weights);
      } catch (dev.dsd.node.routing.NoRouteException gap) {
        if (all.size() == refused.size()) {
          throw gap;
        }
        dev.dsd.node.routing.Route r = view.route(modelId, refused, weights);
        log.info("routing through backed-off peers, nothing else covers their layers route={}", r.describe());
        return r;
      }
    }
  }

  /** config.json and tokenizer.json of a model this node does not serve, from a peer that does. */
  private Path fetchModelFiles(String modelId) {
    Path dir = config.cacheDir().resolve(modelId);
    if (Files.isRegularFile(dir.resolve("tokenizer.json")) && Files.isRegularFile(dir.resolve("config.json"))) {
      return dir;
    }
    for (var e : view.nodes().entrySet()) {
      if (e.getValue().getShardsList().stream().noneMatch(s -> s.getModelId().equals(modelId))) {
        continue;
      }
      try {
        NodeInfo files = info.fetch(e.getKey(), modelId, Duration.ofSeconds(30)).get();
        if (!files.getError().isEmpty() || files.getTokenizerJson().isEmpty()) {
          continue;
        }
        Files.createDirectories(dir);
        Path tmp = Files.createTempDirectory(config.cacheDir(), "fetch");
        Files.write(tmp.resolve("config.json"), files.getConfigJson().toByteArray());
        Files.write(tmp.resolve("tokenizer.json"), files.getTokenizerJson().toByteArray());
        ModelConfigLoader.load(tmp.resolve("config.json")); // refuse a malformed config before caching it
        Files.move(tmp.resolve("config.json"), dir.resolve("config.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.move(tmp.resolve("tokenizer.json"), dir.resolve("tokenizer.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.deleteIfExists(tmp);
        log.info("fetched model files model={} from={}", modelId.substring(0, 12), e.getKey());
        return dir;
      } catch (IOException | RuntimeException | InterruptedException | java.util.concurrent.ExecutionException ex) {
        log.warn("cannot fetch model files from {}: {}", e.getKey(), ex.toString());
      }
    }
    throw new GenerationException("no peer could send the tokenizer of model " + modelId.substring(0, 12));
  }

  /** {@code g} with its tokens' timing recorded: time to first token counts the request's wait in the queue. */
  private Generator timed(Generator g) {
    return new Generator() {
      @Override
      public dev.dsd.node.generate.GenerationResult generate(dev.dsd.node.generate.GenerationRequest req,
          dev.dsd.node.generate.TokenSink sink) {
        Long since = GenerationQueue.submittedAt();
        return g.generate(req, metrics.timed(sink, since != null ? since : System.nanoTime()));
      }

      @Override
      public void close() {
        g.close();
      }
    };
  }

  /** Requests waiting for a generation slot (HTTP and {@code /dsd/generate/1.0.0} together). */
  public GenerationQueue queue() {
    return queue;
  }

  @Override
  public void close() {
    if (http != null) {
      http.close();
    }
    queue.close(HttpApiServer.CLOSE_GRACE_MILLIS);
    timer.shutdownNow();
    net.withdraw();
    pipeline.close();
    if (draftServer != null) {
      draftServer.close();
    }
    draftClient.close();
    net.close();
    if (shard != null) {
      shard.close();
    }
    if (draft != null) {
      draft.close();
    }
    log.info("node down peer={}", host.peerId());
  }
}
