package dev.dsd.cli;

import dev.dsd.node.Node;
import dev.dsd.node.NodeConfig;
import dev.dsd.node.routing.Candidate;
import dev.dsd.node.swarm.SwarmView;
import dev.dsd.node.swarm.proto.NodeInfo;
import dev.dsd.node.swarm.proto.ShardInfo;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.pipeline.model.WeightFormat;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "swarm",
    mixinStandardHelpOptions = true,
    description = "Show what a swarm serves: peers, models, layer coverage and gaps, measured round-trip times.",
    footer = {"", "Example:", "  dsd swarm --peer /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW..."})
final class SwarmCommand implements Callable<Integer> {
  @Option(names = "--peer", required = true, paramLabel = "MULTIADDR", description = "Any member of the swarm (with /p2p/ID).")
  String peer;

  @Override
  public Integer call() throws Exception {
    NodeConfig c = new NodeConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(),
        List.of(Multiaddr.parse(peer)), null, null, 0, 0, null, 1, 0, Files.createTempDirectory("dsd-swarm"), null, null, 0,
        dev.dsd.node.stage.Fault.NONE, null);
    try (Node n = Node.start(c)) {
      SwarmView v = n.view();
      v.refresh(Duration.ofSeconds(5));
      v.refresh(Duration.ofSeconds(5)); // the first pings pay for connecting and JIT; the second measures the link
      Map<PeerId, NodeInfo> nodes = new TreeMap<>(v.nodes());
      nodes.remove(n.peerId());
      if (nodes.isEmpty()) {
        throw new CliException("no peer answered through " + peer);
      }
      System.out.println("peers " + nodes.size());
      nodes.forEach((p, info) -> {
        double rtt = v.rtts().get(p);
        // how this command reaches it, and whether it says others can dial it
        StringBuilder line = new StringBuilder("  " + p + "  " + path(n, p) + "  rtt "
            + (Double.isNaN(rtt) ? "?" : String.format("%.2f ms", rtt / 1000)));
        line.append("  reachability ").append(info.getReachability().isEmpty() ? "?" : info.getReachability());
        for (ShardInfo s : info.getShardsList()) {
          line.append("  ").append(s.getModelName()).append(" ").append(s.getModelId(), 0, 12).append(" layers [")
              .append(s.getFromLayer()).append(",").append(s.getToLayer()).append(") of ").append(s.getNumLayers())
              .append(" weights ").append(s.getWeights().isEmpty() ? "f32" : s.getWeights())
              .append(" sessions ").append(s.getSessions()).append("/").append(s.getMaxSessions())
              .append(" compute ").append(s.getComputeMicros() / 1000.0).append(" ms");
        }
        info.getDraftsList().forEach(d -> line.append("  draft ").append(d.getModelId(), 0, 12).append(" sessions ")
            .append(d.getSessions()));
        if (info.getShardsCount() == 0 && info.getDraftsCount() == 0) {
          line.append("  serves no layers (entry/router)");
        }
        System.out.println(line);
      });
      for (String model : v.models()) {
        int layers = v.layers(model);
        // a session runs on stages of one format, so coverage is per format
        Map<WeightFormat, List<Candidate>> byFormat = new TreeMap<>();
        v.candidates(model).forEach(cd -> byFormat.computeIfAbsent(cd.weights(), f -> new ArrayList<>()).add(cd));
        StringBuilder formats = new StringBuilder();
        byFormat.forEach((f, cds) -> formats.append(formats.length() == 0 ? "" : "; ").append(f.id()).append(": ")
            .append(cds.size()).append(" servers, ").append(coverage(layers, cds)));
        System.out.println("model " + model.substring(0, 12) + " layers " + layers + " servers "
            + v.candidates(model).size() + (byFormat.isEmpty() ? " none" : " (" + formats + ")"));
      }
    }
    return 0;
  }

  /** "fully covered", or the layer ranges nobody of these servers serves. */
  private static String coverage(int layers, List<Candidate> cds) {
    boolean[] covered = new boolean[layers];
    cds.forEach(cd -> {
      for (int l = cd.from(); l < cd.to() && l < layers; l++) {
        covered[l] = true;
      }
    });
    StringBuilder gaps = new StringBuilder();
    for (int l = 0; l < layers; l++) {
      if (!covered[l] && (l == 0 || covered[l - 1])) {
        int e = l;
        while (e < layers && !covered[e]) {
          e++;
        }
        gaps.append(gaps.length() == 0 ? "" : ", ").append("[").append(l).append(",").append(e).append(")");
      }
    }
    return gaps.length() == 0 ? "fully covered" : "GAPS " + gaps;
  }

  /** How this command's node reaches the peer: directly, only through a relay, or not at all now. */
  static String path(Node n, PeerId p) {
    var conns = n.host().connections().stream().filter(c -> c.remotePeer().equals(p) && c.isOpen()).toList();
    if (conns.isEmpty()) {
      return "not-connected";
    }
    return conns.stream().anyMatch(c -> !c.relayed()) ? "direct" : "relayed";
  }
}
