package dev.dsd.node.testing;

import dev.dsd.node.stage.HostedShard;
import dev.dsd.node.pipeline.PipelineService;
import dev.dsd.node.routing.Route;
import dev.dsd.p2p.host.NettyHost;
import dev.dsd.pipeline.runtime.RunnerOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A target cut at {@code cuts} into stages, each on its own host in this JVM, plus an entry host
 * that serves no layers, and the route through the stages in order.
 */
public record StageSwarm(PipelineService entry, List<PipelineService> stages, Route route) {

  public static StageSwarm start(Closer closer, Path model, int[] cuts, RunnerOptions options) {
    List<PipelineService> stages = new ArrayList<>();
    List<Route.Stage> hops = new ArrayList<>();
    String modelId = null;
    for (int i = 0; i + 1 < cuts.length; i++) {
      NettyHost h = closer.host();
      HostedShard shard = closer.keep(HostedShard.load(model, cuts[i], cuts[i + 1], options));
      modelId = shard.modelId();
      stages.add(closer.keep(new PipelineService(h, List.of(shard), 2)));
      hops.add(new Route.Stage(h.peerId(), h.listenAddrs(), cuts[i], cuts[i + 1]));
    }
    PipelineService entry = closer.keep(new PipelineService(closer.host(), List.of(), 2));
    return new StageSwarm(entry, stages, new Route(modelId, hops, 0));
  }

  /** {@code layers} split evenly into {@code n} stages. */
  public static int[] even(int layers, int n) {
    int[] cuts = new int[n + 1];
    for (int i = 0; i <= n; i++) {
      cuts[i] = layers * i / n;
    }
    return cuts;
  }
}
