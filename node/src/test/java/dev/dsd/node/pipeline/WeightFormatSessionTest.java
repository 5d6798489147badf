package dev.dsd.node.pipeline;

import dev.dsd.node.stage.HostedShard;
import dev.dsd.node.entry.PipelineGenerator;
import dev.dsd.node.entry.PipelineTargetPass;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.pipeline.proto.DType;
import dev.dsd.node.pipeline.proto.Error;
import dev.dsd.node.pipeline.proto.Hop;
import dev.dsd.node.pipeline.proto.OpenSession;
import dev.dsd.node.pipeline.proto.PipelineMessage;
import dev.dsd.node.routing.NoRouteException;
import dev.dsd.node.routing.Route;
import dev.dsd.node.routing.WeightsField;
import dev.dsd.node.swarm.proto.ShardInfo;
import dev.dsd.node.testing.Closer;
import dev.dsd.node.wire.RawStream;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.checkpoint.Checkpoint;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.runtime.RunnerOptions;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A stage serves sessions of its own weights format only, so not even a buggy entry can chain
 * stages of different formats. The stages here all compute in f32 whatever they announce: what is
 * tested is the announcement and its enforcement, not the arithmetic of a format.
 */
class WeightFormatSessionTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();

  record Stage(PipelineService service, Route.Stage hop) {}

  Path target() throws Exception {
    return TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(21)
        .writeTo(tmp.resolve("target"));
  }

  Stage stage(Path model, int from, int to, WeightFormat weights) {
    NettyHost h = closer.host();
    HostedShard shard = closer.keep(HostedShard.load(model, from, to, RunnerOptions.defaults().withThreads(1), weights));
    PipelineService s = closer.keep(new PipelineService(h, List.of(shard), 2));
    return new Stage(s, new Route.Stage(h.peerId(), h.listenAddrs(), from, to));
  }

  static String modelId(Path model) {
    try (Checkpoint ck = Checkpoint.open(model)) {
      return ck.modelId();
    }
  }

  @Test
  void aStageRefusesASessionOfAnotherFormatWhateverTheEntrySays() throws Exception {
    Path model = target();
    Stage f32 = stage(model, 0, 2, WeightFormat.F32);
    Stage q4 = stage(model, 2, 4, WeightFormat.Q4);
    PipelineService entry = closer.keep(new PipelineService(closer.host(), List.of(), 2));
    String id = modelId(model);
    for (WeightFormat asked : new WeightFormat[] {WeightFormat.F32, WeightFormat.Q4}) {
      // a buggy entry chains the two formats and names either one
      Route mixed = new Route(id, List.of(f32.hop(), q4.hop()), 0, asked);
      PipelineException e = assertThrows(PipelineException.class,
          () -> PipelineTargetPass.open(entry, mixed, 32, PipelineTargetPass.Options.greedy()));
      Stage refuser = asked == WeightFormat.F32 ? q4 : f32;
      String own = asked == WeightFormat.F32 ? "q4" : "f32";
      assertEquals("WRONG_MODEL", e.code(), e.getMessage());
      assertEquals(refuser.hop().peer(), e.failedPeer(), e.getMessage());
      assertTrue(e.getMessage().contains("in " + own + " weights, the session asks for " + asked.id()), e.getMessage());
    }
    PipelineTest.awaitZero(f32.service()::stageSessionCount, "the refused sessions are freed");
    PipelineTest.awaitZero(q4.service()::stageSessionCount, "nothing was opened on the refusing stage");
    // a route source that only knows an f32 route refuses a request for q4 before anything opens
    PipelineGenerator.RouteSource fixed = PipelineGenerator.RouteSource.of(new Route(id, List.of(
        new Route.Stage(f32.hop().peer(), f32.hop().addrs(), 0, 4)), 0));
    NoRouteException none = assertThrows(NoRouteException.class, () -> fixed.route(java.util.Set.of(), WeightFormat.Q4));
    assertTrue(none.getMessage().contains("no route in q4 weights"), none.getMessage());
  }

  @Test
  void stagesOfOneFormatServeSessionsOfThatFormat() throws Exception {
    Path model = target();
    Stage a = stage(model, 0, 2, WeightFormat.Q8);
    Stage b = stage(model, 2, 4, WeightFormat.Q8);
    PipelineService entry = closer.keep(new PipelineService(closer.host(), List.of(), 2));
    Checkpoint ck = closer.keep(Checkpoint.open(model));
    Route route = new Route(ck.modelId(), List.of(a.hop(), b.hop()), 0, WeightFormat.Q8);
    PipelineGenerator gen = new PipelineGenerator(entry, ck.tokenizer(), ck.config(),
        PipelineGenerator.RouteSource.of(route), PipelineGenerator.DrafterFactory.NONE, PipelineTargetPass.Options.greedy()
            .withActivations(DType.F32));
    GenerationRequest req = GenerationRequest.greedy("def f(x):", 16);
    // the stages really run q8, so the reference is the whole model in q8 on this machine
    try (LocalGenerator local = new LocalGenerator(model, null,
        RunnerOptions.defaults().withThreads(1).withWeights(WeightFormat.Q8))) {
      assertArrayEquals(local.generate(req, TokenSink.NONE).tokenIds(),
          gen.generate(req.withWeights(WeightFormat.Q8), TokenSink.NONE).tokenIds());
    }
    NoRouteException e = assertThrows(NoRouteException.class,
        () -> gen.generate(req.withWeights(WeightFormat.F32), TokenSink.NONE));
    assertTrue(e.getMessage().contains("no route in f32 weights"), e.getMessage());
  }

  /** Peers from before weight formats send no field: it reads as f32 both ways, and unknown names are refused. */
  @Test
  void anAbsentFormatIsF32AndAnUnknownOneIsABadRequest() throws Exception {
    assertEquals("", ShardInfo.parseFrom(ShardInfo.newBuilder().setModelId("m").setFromLayer(0).setToLayer(2).build()
        .toByteArray()).getWeights());
    assertEquals(WeightFormat.F32, WeightsField.parse(""));
    assertEquals(WeightFormat.Q4, WeightsField.parse(ShardInfo.parseFrom(ShardInfo.newBuilder().setWeights("q4").build()
        .toByteArray()).getWeights()));
    assertEquals("f16", OpenSession.parseFrom(OpenSession.newBuilder().setWeights(WeightsField.of(WeightFormat.F16))
        .build().toByteArray()).getWeights());

    Path model = target();
    Stage q4 = stage(model, 0, 2, WeightFormat.Q4);
    NettyHost old = closer.host(); // an entry that predates formats, and the stage after this one
    String id = modelId(model);
    for (String weights : new String[] {"", "q3"}) {
      LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
      try (RawStream<PipelineMessage> raw = RawStream.open(old, q4.hop().peer(), q4.hop().addrs(), PipelineProtocol.ID,
          PipelineMessage.parser(), events::add, Duration.ofSeconds(10))) {
        OpenSession.Builder open = OpenSession.newBuilder().setSessionId("old-" + weights).setModelId(id)
            .addChain(hop(q4.hop().peer().toBytes(), 0, 2)).addChain(hop(old.peerId().toBytes(), 2, 4))
            .setEntryPeerId(ByteString.copyFrom(old.peerId().toBytes())).setMaxTokens(16).setTopP(1);
        if (!weights.isEmpty()) {
          open.setWeights(weights);
        }
        raw.send(PipelineMessage.newBuilder().setOpen(open).build());
        Object reply = events.poll(10, TimeUnit.SECONDS);
        assertTrue(reply instanceof RawStream.Reply<?>, "an error reply, got " + reply);
        Error err = ((PipelineMessage) ((RawStream.Reply<?>) reply).message()).getError();
        if (weights.isEmpty()) {
          assertEquals(Error.Code.WRONG_MODEL, err.getCode(), err.getMessage());
          assertTrue(err.getMessage().contains("the session asks for f32"), err.getMessage());
        } else {
          assertEquals(Error.Code.BAD_REQUEST, err.getCode(), err.getMessage());
          assertTrue(err.getMessage().contains("unknown weights format 'q3'"), err.getMessage());
        }
      }
    }
    assertEquals(0, q4.service().stageSessionCount());
  }

  static Hop hop(byte[] peer, int from, int to) {
    return Hop.newBuilder().setPeerId(ByteString.copyFrom(peer)).setFromLayer(from).setToLayer(to).build();
  }
}
