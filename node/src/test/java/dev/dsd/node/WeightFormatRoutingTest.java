package dev.dsd.node;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.client.RemoteGenerator;
import dev.dsd.node.generate.GenerationException;
import dev.dsd.node.generate.GenerationRequest;
import dev.dsd.node.generate.GenerationResult;
import dev.dsd.node.generate.LocalGenerator;
import dev.dsd.node.generate.TokenSink;
import dev.dsd.node.metrics.PrometheusTextParser;
import dev.dsd.node.stage.Fault;
import dev.dsd.node.routing.Candidate;
import dev.dsd.node.testing.Await;
import dev.dsd.node.testing.Closer;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole nodes announcing weight formats: the entry routes each session through stages of one
 * format. The stage of the other format here also corrupts what it computes, so a session that
 * touched it would show in the output, and a spot check that compared it with an f32 replica would
 * count; neither may happen.
 */
class WeightFormatRoutingTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();

  Node node(Path model, int from, int to, List<Multiaddr> bootstrap, double spotCheck, Fault fault,
      WeightFormat weights) {
    return closer.keep(Node.start(new NodeConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(),
        bootstrap, null, model, from, to, null, 1, 0, tmp.resolve("cache"), null, null, spotCheck, fault, null,
        weights)));
  }

  @Test
  void aSessionNeverMixesFormatsAndAMissingFormatIsNamed() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node a = node(model, 0, 2, List.of(), 0, Fault.NONE, WeightFormat.F32);
    Node b = node(model, 2, 4, a.addresses(), 0, Fault.NONE, WeightFormat.F32);
    Node q4 = node(model, 2, 4, a.addresses(), 0, Fault.CORRUPT, WeightFormat.Q4);
    // every round is spot-checked against a replica of the same layers, if one of the same format exists
    Node entry = node(null, 0, 0, a.addresses(), 1.0, Fault.NONE, WeightFormat.F32);
    Await.awaitTrue(() -> {
      entry.view().refresh(Duration.ofSeconds(5));
      return entry.view().candidates(a.pipeline().stages().get(0).shard().modelId()).size() == 3;
    }, () -> "the entry sees all three stages: " + entry.view().nodes().keySet());
    String modelId = a.pipeline().stages().get(0).shard().modelId();
    Map<String, WeightFormat> announced = entry.view().candidates(modelId).stream()
        .collect(Collectors.toMap(c -> c.peer().toBase58(), Candidate::weights));
    assertEquals(Map.of(a.peerId().toBase58(), WeightFormat.F32, b.peerId().toBase58(), WeightFormat.F32,
        q4.peerId().toBase58(), WeightFormat.Q4), announced, "each stage's format arrives in its info reply");

    GenerationRequest req = new GenerationRequest("def main():", 24, 0, 1, 0, 2, false, List.of());
    int[] want;
    try (LocalGenerator local = new LocalGenerator(model, 1)) {
      want = local.generate(req, TokenSink.NONE).tokenIds();
    }
    for (int i = 0; i < 4; i++) {
      GenerationResult r = entry.generator("").generate(i % 2 == 0 ? req : req.withWeights(WeightFormat.F32),
          TokenSink.NONE);
      assertArrayEquals(want, r.tokenIds(), "only f32 stages served it");
      assertTrue(r.route().stream().noneMatch(s -> s.startsWith(q4.peerId().toBase58())), r.route().toString());
    }
    var metrics = PrometheusTextParser.parse(entry.metrics().render());
    assertEquals(0, PrometheusTextParser.find(metrics, "dsd_spot_checks_total").value(),
        "no replica of the route's format exists, so nothing was compared with the q4 stage");
    assertTrue(entry.banned().isEmpty(), "nobody is taken for a liar for computing another format");

    // asked for through a client: the format that covers only half the model, one nobody serves
    try (RemoteGenerator client = new RemoteGenerator(entry.addresses().get(0), Duration.ofSeconds(60))) {
      GenerationException half = assertThrows(GenerationException.class,
          () -> client.generate(req.withWeights(WeightFormat.Q4), TokenSink.NONE));
      assertTrue(half.getMessage().contains("in q4 weights: nothing serves layer 0 onwards"), half.getMessage());
      GenerationException none = assertThrows(GenerationException.class,
          () -> client.generate(req.withWeights(WeightFormat.Q8), TokenSink.NONE));
      assertTrue(none.getMessage().contains("in q8 weights; the swarm serves it in f32, q4"), none.getMessage());
    }

    // the only f32 stage of [2, 4) goes: the q4 one does not stand in for it
    b.close();
    closer.forget(b);
    GenerationException gap = assertThrows(GenerationException.class,
        () -> entry.generator("").generate(req, TokenSink.NONE));
    assertTrue(gap.getMessage().contains("f32 peers serve nothing from layer 2 onwards"), gap.getMessage());
  }
}
