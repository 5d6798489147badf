package dev.dsd.node.draft;

import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/** An entry's access to remote draft nodes: makes a {@link RemoteDrafter} per generation. */
public final class DraftClient implements AutoCloseable {
  private final NettyHost host;
  private final Duration timeout;
  private final ExecutorService pool;

  /** {@code timeout} bounds connecting, opening and every proposal. */
  public DraftClient(NettyHost host, Duration timeout) {
    this.host = host;
    this.timeout = timeout;
    AtomicInteger n = new AtomicInteger();
    // only hands replies to the waiting generation thread: one thread is plenty
    this.pool = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "dsd-draft-client-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
  }

  NettyHost host() {
    return host;
  }

  Duration timeout() {
    return timeout;
  }

  ExecutorService pool() {
    return pool;
  }

  /** A drafter that proposes with {@code modelId} on {@code peer}, sampling like {@code req}. */
  public RemoteDrafter drafter(PeerId peer, List<Multiaddr> addrs, String modelId, GenerationRequest req, int capacity,
      int usableVocab) {
    return new RemoteDrafter(this, peer, addrs, modelId, req.temperature(), req.topP(), req.seed(), capacity, usableVocab);
  }

  /** For a {@link PipelineGenerator}: every generation drafts on the same remote model. */
  public PipelineGenerator.DrafterFactory factory(PeerId peer, List<Multiaddr> addrs, String modelId) {
    return (req, capacity, usable) -> drafter(peer, addrs, modelId, req, capacity, usable);
  }

  @Override
  public void close() {
    pool.shutdownNow();
  }
}
