package dev.dsd.node.swarm;

import com.google.protobuf.ByteString;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.stage.StageServer;
import dev.dsd.node.routing.WeightsField;
import dev.dsd.node.swarm.proto.DraftInfo;
import dev.dsd.node.swarm.proto.InfoRequest;
import dev.dsd.node.swarm.proto.NodeInfo;
import dev.dsd.node.swarm.proto.PeerRtt;
import dev.dsd.node.swarm.proto.ShardInfo;
import dev.dsd.node.swarm.proto.SwarmMessage;
import dev.dsd.node.wire.MessageStream;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.host.NettyHost;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/** Serves and asks {@code /dsd/info/1.0.0}: one {@link InfoRequest}, one {@link NodeInfo}. */
public final class InfoService {
  public static final String ID = "/dsd/info/1.0.0";
  /** tokenizer.json of large vocabularies is a few MiB. */
  public static final int MAX_FRAME_BYTES = 32 << 20;
  static final MessageStream.Codec<SwarmMessage> CODEC = new MessageStream.Codec<>(SwarmMessage.parser(),
      MAX_FRAME_BYTES, (limit, msg) -> SwarmMessage.newBuilder().setInfo(NodeInfo.newBuilder().setError(msg)).build());

  private final NettyHost host;
  private final PipelineService pipeline;
  private final RttTable rtts;
  private final Executor pool;
  private final Supplier<List<DraftInfo>> drafts;

  public InfoService(NettyHost host, PipelineService pipeline, RttTable rtts, Executor pool,
      Supplier<List<DraftInfo>> drafts) {
    this.host = host;
    this.pipeline = pipeline;
    this.rtts = rtts;
    this.pool = pool;
    this.drafts = drafts;
    host.setStreamHandler(ID, st -> MessageStream.attach(st, CODEC, pool, new MessageStream.Listener<>() {
      @Override
      public void onMessage(MessageStream<SwarmMessage> s, SwarmMessage m) {
        NodeInfo reply = m.hasRequest() ? info(m.getRequest())
            : NodeInfo.newBuilder().setError("expected an info request").build();
        s.send(SwarmMessage.newBuilder().setInfo(reply).build());
        s.close();
      }

      @Override
      public void onClosed(MessageStream<SwarmMessage> s, Throwable cause) { }
    }));
  }

  /** What this node serves right now. */
  public NodeInfo info(InfoRequest req) {
    NodeInfo.Builder b = NodeInfo.newBuilder().setPeerId(ByteString.copyFrom(host.peerId().toBytes()))
        .setAgent("dsd/0.1.0").setReachability(host.reachability().toString());
    for (StageServer st : pipeline.stages()) {
      var shard = st.shard();
      b.addShards(ShardInfo.newBuilder().setModelId(shard.modelId()).setFromLayer(shard.from()).setToLayer(shard.to())
          .setNumLayers(shard.config().numLayers()).setComputeMicros(st.medianComputeMicros())
          .setSessions(st.sessionCount()).setMaxSessions(shard.batch().sessions().maxSessions())
          .setModelName(shard.checkpoint().dir().getFileName().toString())
          .setWeights(WeightsField.of(shard.weights())));
    }
    b.addAllDrafts(drafts.get());
    rtts.snapshot().forEach((peer, us) -> b.addRtts(PeerRtt.newBuilder().setPeerId(ByteString.copyFrom(peer.toBytes()))
        .setMicros((int) Math.min(Integer.MAX_VALUE, Math.round(us)))));
    if (!req.getFilesOfModel().isEmpty()) {
      StageServer st = pipeline.stages().stream().filter(s -> s.shard().modelId().equals(req.getFilesOfModel()))
          .findFirst().orElse(null);
      if (st == null) {
        b.setError("this node does not serve model " + req.getFilesOfModel());
      } else {
        Path dir = st.shard().checkpoint().dir();
        try {
          b.setConfigJson(ByteString.copyFrom(Files.readAllBytes(dir.resolve("config.json"))));
          b.setTokenizerJson(ByteString.copyFrom(Files.readAllBytes(dir.resolve("tokenizer.json"))));
        } catch (IOException e) {
          b.setError("cannot read the model files: " + e.getMessage());
        }
      }
    }
    return b.build();
  }

  /** Asks a peer what it serves (and, with {@code filesOfModel}, for that model's files). */
  public CompletableFuture<NodeInfo> fetch(PeerId peer, String filesOfModel, Duration timeout) {
    CompletableFuture<NodeInfo> out = new CompletableFuture<>();
    host.newStream(peer, List.of(ID), st -> {
      MessageStream<SwarmMessage> ms = MessageStream.attach(st, CODEC, pool, new MessageStream.Listener<>() {
        @Override
        public void onMessage(MessageStream<SwarmMessage> s, SwarmMessage m) {
          if (m.hasInfo()) {
            out.complete(m.getInfo());
          } else {
            out.completeExceptionally(new IllegalStateException(peer + " answered info with " + m.getBodyCase()));
          }
          s.close();
        }

        @Override
        public void onClosed(MessageStream<SwarmMessage> s, Throwable cause) {
          out.completeExceptionally(new IllegalStateException(peer + " closed the info stream without an answer"));
        }
      });
      ms.send(SwarmMessage.newBuilder().setRequest(InfoRequest.newBuilder().setFilesOfModel(
          filesOfModel == null ? "" : filesOfModel)).build());
    }).exceptionally(e -> {
      out.completeExceptionally(e);
      return null;
    });
    return out.orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }
}
