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
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.testing.TinyCheckpoint;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import dev.dsd.node.testing.Closer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import dev.dsd.node.metrics.PrometheusTextParser;
import dev.dsd.node.testing.Await;
import java.util.Set;

/** Whole nodes on loopback: discovery through the DHT, routing, and prompts handed to any peer. */
class NodeTest {
  @TempDir Path tmp;
  @RegisterExtension final Closer closer = new Closer();


  Node node(Path model, int from, int to, List<Multiaddr> bootstrap) {
    return node(model, from, to, null, bootstrap);
  }

  Node node(Path model, int from, int to, Path draft, List<Multiaddr> bootstrap) {
    return node(model, from, to, draft, bootstrap, 0, dev.dsd.node.stage.Fault.NONE);
  }

  Node node(Path model, int from, int to, Path draft, List<Multiaddr> bootstrap, double spotCheck,
      dev.dsd.node.stage.Fault fault) {
    Node n = Node.start(new NodeConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(), bootstrap, null,
        model, from, to, draft, 1, 0, tmp.resolve("cache"), null, null, spotCheck, fault, null));
    return closer.keep(n);
  }

  @Test
  void anyPeerTakesAPromptAndTheSwarmRoutesIt() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node first = node(model, 0, 2, List.of());
    Node second = node(model, 2, 4, first.addresses());
    Node entry = node(null, 0, 0, first.addresses()); // serves no layers at all
    GenerationRequest req = new GenerationRequest("def main():", 24, 0, 1, 0, 4, false, List.of());
    int[] want;
    try (LocalGenerator local = new LocalGenerator(model, 1)) {
      want = local.generate(req, TokenSink.NONE).tokenIds();
    }
    for (Node to : List.of(entry, second, first)) {
      try (RemoteGenerator client = new RemoteGenerator(to.addresses().get(0), Duration.ofSeconds(60))) {
        StringBuilder streamed = new StringBuilder();
        GenerationResult r = client.generate(req, (text, ids) -> {
          streamed.append(text);
          return true;
        });
        assertArrayEquals(want, r.tokenIds(), "through " + to.peerId());
        assertEquals(r.text(), streamed.toString());
        assertEquals(2, r.route().size(), r.route().toString());
        assertTrue(r.rounds() <= want.length);
      }
    }
    assertEquals(1, entry.view().models().size());
  }

  @Test
  void anEntryWithoutModelsDraftsOnTheSwarmsDraftNode() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node first = node(model, 0, 2, List.of());
    node(model, 2, 4, first.addresses());
    Node draftNode = node(null, 0, 0, model, first.addresses()); // the target as its own draft: all accepted
    Node entry = node(null, 0, 0, first.addresses());
    GenerationRequest req = new GenerationRequest("def main():", 24, 0, 1, 0, 4, false, List.of());
    int[] want;
    try (LocalGenerator local = new LocalGenerator(model, 1)) {
      want = local.generate(req, TokenSink.NONE).tokenIds();
    }
    GenerationResult r = entry.generator("").generate(req, TokenSink.NONE);
    assertArrayEquals(want, r.tokenIds());
    assertTrue(r.draftedTokens() > 0);
    assertEquals(1.0, r.acceptanceRate(), "only a draft identical to the target is always right: " + r.acceptanceRate());
    // the draft node dies: generation goes on without speculation, same output
    draftNode.close();
    closer.forget(draftNode);
    GenerationResult after = entry.generator("").generate(req, TokenSink.NONE);
    assertArrayEquals(want, after.tokenIds());
  }

  @Test
  void aStageDyingMidGenerationCostsAPauseNotTheOutput() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node a = node(model, 0, 2, List.of());
    List<Node> stages = List.of(a, node(model, 0, 2, a.addresses()), node(model, 2, 4, a.addresses()),
        node(model, 2, 4, a.addresses()));
    Node entry = node(null, 0, 0, a.addresses());
    GenerationRequest req = new GenerationRequest("def main():", 96, 0, 1, 0, 3, false, List.of());
    int[] want;
    try (LocalGenerator local = new LocalGenerator(model, 1)) {
      want = local.generate(req, TokenSink.NONE).tokenIds();
    }
    for (int victimStage : new int[] {0, 1}) { // the first stage of the route, then the last
      List<Long> times = new ArrayList<>();
      Node[] killed = new Node[1];
      GenerationResult r = entry.generator("").generate(req, (text, ids) -> {
        times.add(System.nanoTime());
        if (times.size() == 20 && killed[0] == null) {
          for (Node n : stages) {
            boolean serving = n.pipeline().stageSessionCount() > 0;
            boolean right = n.pipeline().stages().get(0).shard().from() == (victimStage == 0 ? 0 : 2);
            if (serving && right && !n.host().connections().isEmpty() && killed[0] == null) {
              killed[0] = n;
              new Thread(n::close).start(); // the node dies while the generation goes on
            }
          }
        }
        return true;
      });
      assertTrue(killed[0] != null, "a serving stage was found and killed");
      assertArrayEquals(want, r.tokenIds(), "output after failover equals the undisturbed run");
      long stall = 0;
      for (int i = 1; i < times.size(); i++) {
        stall = Math.max(stall, times.get(i) - times.get(i - 1));
      }
      System.out.printf("failover victim=stage%d stall=%.1f ms route=%s%n", victimStage, stall / 1e6, r.route());
      assertTrue(r.route().stream().noneMatch(s -> s.startsWith(killed[0].peerId().toBase58())), r.route().toString());
      closer.forget(killed[0]);
    }
    var metrics = PrometheusTextParser.parse(entry.metrics().render());
    // each generation failed over (a kill only misses the route if a session from before lingers)
    assertTrue(PrometheusTextParser.find(metrics, "dsd_failovers_total").value() >= 1);
    assertTrue(PrometheusTextParser.find(metrics, "dsd_failover_stall_seconds_count").value() >= 1,
        "the failovers' pauses are in /metrics");
  }

  @Test
  void aStageThatLiesIsCaughtBySpotChecksAndTheOutputStaysRight() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node a = node(model, 0, 2, List.of());
    Node liar = node(model, 0, 2, null, a.addresses(), 0, dev.dsd.node.stage.Fault.CORRUPT);
    node(model, 0, 2, a.addresses());
    node(model, 2, 4, a.addresses());
    Node entry = node(null, 0, 0, null, a.addresses(), 1.0, dev.dsd.node.stage.Fault.NONE);
    // every round is checked against a random replica: over ~20 rounds the liar is compared with
    // near certainty (1 - 2^-20), whether or not the route starts on it
    GenerationRequest req = new GenerationRequest("def main():", 64, 0, 1, 0, 2, false, List.of());
    int[] want;
    try (LocalGenerator local = new LocalGenerator(model, 1)) {
      want = local.generate(req, TokenSink.NONE).tokenIds();
    }
    GenerationResult r = entry.generator("").generate(req, TokenSink.NONE);
    assertArrayEquals(want, r.tokenIds(), "the output is the honest target's");
    assertEquals(Set.of(liar.peerId()), entry.banned(), "exactly the lying peer is banned");
    var metrics = PrometheusTextParser.parse(entry.metrics().render());
    assertEquals(1, PrometheusTextParser.find(metrics, "dsd_peers_banned_total").value());
    assertTrue(PrometheusTextParser.find(metrics, "dsd_spot_checks_total").value() > 0);
    assertTrue(r.route().stream().noneMatch(s -> s.startsWith(liar.peerId().toBase58())), r.route().toString());
  }

  @Test
  void aClientThatHangsUpFreesEveryStage() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node first = node(model, 0, 2, List.of());
    Node second = node(model, 2, 4, first.addresses());
    try (RemoteGenerator client = new RemoteGenerator(first.addresses().get(0), Duration.ofSeconds(60))) {
      int[] pieces = {0};
      GenerationResult r = client.generate(new GenerationRequest("def main():", 200, 0, 1, 0, 0, false, List.of()),
          (text, ids) -> ++pieces[0] < 3);
      assertEquals("cancelled", r.finishReason());
    }
    for (Node n : List.of(first, second)) {
      long deadline = System.nanoTime() + 5_000_000_000L;
      while (n.pipeline().stageSessionCount() > 0 && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertEquals(0, n.pipeline().stageSessionCount(), "stage sessions freed after the client hung up");
    }
    assertEquals(0, first.pipeline().entrySessionCount());
  }

  @Test
  void aStageThatTurnedSlowIsRoutedAroundForNewSessions() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node a = node(model, 2, 4, List.of());
    Node slow = node(model, 0, 2, null, a.addresses(), 0, dev.dsd.node.stage.Fault.SLOW);
    Node fast = node(model, 0, 2, a.addresses());
    Node entry = node(null, 0, 0, a.addresses());
    GenerationRequest req = new GenerationRequest("def main():", 12, 0, 1, 0, 0, false, List.of());
    // make both replicas report a measured compute time, whatever the first routes pick
    for (Node n : List.of(slow, fast)) {
      try (RemoteGenerator c = new RemoteGenerator(n.addresses().get(0), Duration.ofSeconds(60))) {
        c.generate(req, TokenSink.NONE); // a stage coordinating its own request routes through itself
      }
    }
    entry.view().refresh(Duration.ofSeconds(5));
    GenerationResult r = entry.generator("").generate(req, TokenSink.NONE);
    assertTrue(r.route().get(0).startsWith(fast.peerId().toBase58()), "routed around the slow stage: " + r.route());
  }

  @Test
  void aBackedOffPeerStillServesWhenNothingElseCoversItsLayers() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node first = node(model, 0, 2, List.of());
    Node busy = closer.keep(Node.start(new NodeConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(),
        first.addresses(), null, model, 2, 4, null, 1, 1, tmp.resolve("cache"), null, null, 0,
        dev.dsd.node.stage.Fault.NONE, null))); // the only [2,4), with room for one session
    Node entry = node(null, 0, 0, first.addresses());
    // just started: wait until the entry sees the whole model (a gap now would be a different failure)
    Await.awaitTrue(() -> {
      entry.view().refresh(Duration.ofSeconds(2));
      return entry.view().nodes().containsKey(busy.peerId()) && entry.view().nodes().containsKey(first.peerId());
    }, () -> "the entry sees both stages: " + entry.view().nodes().keySet());
    GenerationRequest req = new GenerationRequest("def main():", 24, 0, 1, 0, 0, false, List.of());
    String[] refused = new String[1];
    GenerationResult whole = entry.generator("").generate(req, (text, ids) -> {
      if (refused[0] == null) { // a second request while the first holds the only session: refused, backed off
        refused[0] = assertThrows(GenerationException.class, () -> entry.generator("").generate(req, TokenSink.NONE))
            .getMessage();
      }
      return true;
    });
    assertTrue(refused[0].contains("limit"), refused[0]);
    // the refusal was the peer being busy, and the swarm has no other [2,4): a back-off is a
    // preference among replicas, not a two-minute outage of the model
    assertArrayEquals(whole.tokenIds(), entry.generator("").generate(req, TokenSink.NONE).tokenIds());
  }

  @Test
  void aSwarmWithAGapSaysWhichLayersAreMissing() throws Exception {
    Path model = TinyCheckpoint.builder().layers(4).hidden(32).heads(4).kvHeads(2).maxPositions(256).seed(3)
        .writeTo(tmp.resolve("target"));
    Node first = node(model, 0, 2, List.of());
    try (RemoteGenerator client = new RemoteGenerator(first.addresses().get(0), Duration.ofSeconds(60))) {
      GenerationException e = assertThrows(GenerationException.class,
          () -> client.generate(GenerationRequest.greedy("x", 4), TokenSink.NONE));
      assertTrue(e.getMessage().contains("nothing serves layer 2 onwards"), e.getMessage());
    }
  }
}
