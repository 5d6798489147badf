package dev.dsd.node.pipeline;

import dev.dsd.node.stage.StageServer;
import dev.dsd.node.stage.HostedShard;
import dev.dsd.node.stage.Fault;
import dev.dsd.node.entry.PipelineTargetPass;

import dev.dsd.node.wire.MessageStream;
import dev.dsd.node.pipeline.proto.Error;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.p2p.multiaddr.Multiaddr;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.DefaultEventLoopGroup;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.local.LocalAddress;
import io.netty.channel.local.LocalChannel;
import io.netty.channel.local.LocalServerChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Speaks {@code /dsd/pipeline/1.0.0} on a host. Every node runs it: a stage receives sessions on
 * it, and every node is an entry that receives its sessions' results on it (the last stage dials
 * back). The first message of an incoming stream says which: OpenSession makes it a stage's
 * upstream; Opened, RoundResult or Error make it the return stream of one of our sessions.
 */
public final class PipelineService implements AutoCloseable {
  private final NettyHost host;
  private final ExecutorService pool;
  private final List<StageServer> stages;
  private final Map<String, PipelineTargetPass> entrySessions = new ConcurrentHashMap<>();
  private final PipelineStats stats = new PipelineStats();
  private final EventLoopGroup localGroup = new DefaultEventLoopGroup(1);
  private final LocalAddress selfAddress;
  private final Channel selfServer;

  /** {@code shards} may be empty: a node that serves no layers is still an entry. */
  public PipelineService(NettyHost host, List<HostedShard> shards, int threads) {
    this(host, shards, threads, Fault.NONE);
  }

  /** With a {@link Fault}: only for tests of how the swarm treats a lying peer. */
  public PipelineService(NettyHost host, List<HostedShard> shards, int threads, Fault fault) {
    this.host = host;
    AtomicInteger n = new AtomicInteger();
    this.pool = Executors.newFixedThreadPool(Math.max(2, threads), r -> {
      Thread t = new Thread(r, "dsd-pipeline-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    this.stages = shards.stream().map(s -> new StageServer(this, host, s, pool, stats, fault)).toList();
    host.setStreamHandler(PipelineProtocol.ID, st -> MessageStream.attach(st, PipelineProtocol.CODEC, pool, new FirstMessage()));
    this.selfAddress = new LocalAddress("dsd-pipeline-" + host.peerId().toBase58() + "-" + System.identityHashCode(this));
    this.selfServer = new ServerBootstrap().group(localGroup).channel(LocalServerChannel.class)
        .childHandler(new ChannelInitializer<LocalChannel>() {
          @Override
          protected void initChannel(LocalChannel ch) {
            MessageStream.attach(ch, host.peerId(), PipelineProtocol.CODEC, pool, new FirstMessage());
          }
        }).bind(selfAddress).syncUninterruptibly().channel();
    // an entry that vanished without closing must not hold a stage's cache for ever
    localGroup.scheduleAtFixedRate(() -> pool.execute(() -> stages.forEach(StageServer::expireIdle)), 1, 1,
        TimeUnit.SECONDS);
  }

  /**
   * Opens a pipeline stream to {@code peer}: over libp2p, or in-process when the peer is this node
   * (a node may be a stage of a route it coordinates, and a libp2p host does not dial itself).
   */
  public CompletableFuture<MessageStream<PipelineMessage>> open(PeerId peer, List<Multiaddr> addrs,
      MessageStream.Listener<PipelineMessage> listener) {
    CompletableFuture<MessageStream<PipelineMessage>> out = new CompletableFuture<>();
    if (peer.equals(host.peerId())) {
      AtomicReference<MessageStream<PipelineMessage>> ms = new AtomicReference<>();
      new Bootstrap().group(localGroup).channel(LocalChannel.class).handler(new ChannelInitializer<LocalChannel>() {
        @Override
        protected void initChannel(LocalChannel ch) {
          ms.set(MessageStream.attach(ch, peer, PipelineProtocol.CODEC, pool, listener));
        }
      }).connect(selfAddress).addListener(f -> {
        if (f.isSuccess()) {
          out.complete(ms.get());
        } else {
          out.completeExceptionally(f.cause());
        }
      });
      return out;
    }
    if (!addrs.isEmpty()) {
      host.peerStore().addAddrs(peer, addrs);
    }
    AtomicReference<MessageStream<PipelineMessage>> ms = new AtomicReference<>();
    host.newStream(peer, List.of(PipelineProtocol.ID), st -> ms.set(MessageStream.attach(st, PipelineProtocol.CODEC,
        pool, listener))).whenComplete((st, e) -> {
          if (e != null) {
            out.completeExceptionally(e);
          } else {
            out.complete(ms.get());
          }
        });
    return out;
  }

  public NettyHost host() {
    return host;
  }

  public PipelineStats stats() {
    return stats;
  }

  public List<StageServer> stages() {
    return stages;
  }

  public ExecutorService pool() {
    return pool;
  }

  public void register(PipelineTargetPass pass) {
    entrySessions.put(pass.sessionId(), pass);
  }

  public void unregister(PipelineTargetPass pass) {
    entrySessions.remove(pass.sessionId(), pass);
  }

  /** Sessions this node coordinates as the entry. */
  public int entrySessionCount() {
    return entrySessions.size();
  }

  /** Sessions the stages of this node hold. */
  public int stageSessionCount() {
    return stages.stream().mapToInt(StageServer::sessionCount).sum();
  }

  @Override
  public void close() {
    host.removeStreamHandler(PipelineProtocol.ID);
    entrySessions.values().forEach(PipelineTargetPass::close);
    stages.forEach(StageServer::close);
    selfServer.close();
    localGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    pool.shutdownNow();
  }

  private final class FirstMessage implements MessageStream.Listener<PipelineMessage> {
    @Override
    public void onMessage(MessageStream<PipelineMessage> s, PipelineMessage m) {
      switch (m.getBodyCase()) {
        case OPEN -> {
          StageServer stage = stages.stream().filter(st -> st.shard().modelId().equals(m.getOpen().getModelId())
              && m.getOpen().getChainList().stream().anyMatch(h -> h.getFromLayer() == st.shard().from()
                  && java.util.Arrays.equals(h.getPeerId().toByteArray(), host.peerId().toBytes())))
              .findFirst().orElse(null);
          if (stage == null) {
            s.send(PipelineProtocol.error(Error.Code.WRONG_MODEL, m.getOpen().getSessionId(),
                "peer " + host.peerId() + " serves no layers of model " + m.getOpen().getModelId()
                    + " at the position the chain gives it", host.peerId(), 0));
            s.close();
            return;
          }
          stage.open(s, m.getOpen());
        }
        case OPENED, RESULT, ERROR -> {
          String id = switch (m.getBodyCase()) {
            case OPENED -> m.getOpened().getSessionId();
            case RESULT -> m.getResult().getSessionId();
            default -> m.getError().getSessionId();
          };
          PipelineTargetPass pass = entrySessions.get(id);
          if (pass == null || !pass.acceptsReturnFrom(s.remote())) {
            s.send(PipelineProtocol.error(Error.Code.UNKNOWN_SESSION, id, "no session " + id + " here"));
            s.close();
            return;
          }
          pass.attachReturn(s, m);
        }
        default -> {
          stats.rejectedMessages.increment();
          s.send(PipelineProtocol.error(Error.Code.BAD_REQUEST, "", "a stream must start with open, not "
              + m.getBodyCase()));
          s.close();
        }
      }
    }

    @Override
    public void onClosed(MessageStream<PipelineMessage> s, Throwable cause) {
      // a stream that ended before saying what it was for holds nothing to clean up
    }
  }
}
