package dev.dsd.node;

import dev.dsd.pipeline.model.WeightFormat;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.pnet.SwarmKey;
import dev.dsd.pipeline.model.WeightFormat;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * Everything a node is started with; every part optional, so a node may serve a target shard, a
 * draft model, both, or nothing (a pure entry and DHT router).
 *
 * @param model a target checkpoint directory, or null
 * @param from first layer served of {@code model}
 * @param to end of the layers served (exclusive); -1 for all
 * @param draft a draft checkpoint directory, or null
 * @param cacheDir where an entry keeps the config and tokenizer it fetched from the swarm
 * @param spotCheck probability that an entry re-checks a round's stage on a replica
 * @param fault deliberate misbehaviour of this node's stage, for tests only
 * @param http where to serve the OpenAI-compatible API, or null for none
 * @param weights the format the hosted shard keeps its weights in; its run-format file is cached
 *     under {@code cacheDir/weights}
 */
public record NodeConfig(List<Multiaddr> listen, List<Multiaddr> announce, List<Multiaddr> bootstrap, Path identity,
    Path model, int from, int to, Path draft, int threads, int maxSessions, Path cacheDir, SwarmKey swarmKey,
    Set<PeerId> allowPeers, double spotCheck, dev.dsd.node.stage.Fault fault,
    dev.dsd.node.http.HttpApiConfig http, WeightFormat weights) {
  /** A node whose shard keeps f32 weights. */
  public NodeConfig(List<Multiaddr> listen, List<Multiaddr> announce, List<Multiaddr> bootstrap, Path identity,
      Path model, int from, int to, Path draft, int threads, int maxSessions, Path cacheDir, SwarmKey swarmKey,
      Set<PeerId> allowPeers, double spotCheck, dev.dsd.node.stage.Fault fault,
      dev.dsd.node.http.HttpApiConfig http) {
    this(listen, announce, bootstrap, identity, model, from, to, draft, threads, maxSessions, cacheDir, swarmKey,
        allowPeers, spotCheck, fault, http, WeightFormat.F32);
  }

  public NodeConfig {
    listen = List.copyOf(listen);
    announce = List.copyOf(announce);
    bootstrap = List.copyOf(bootstrap);
    weights = weights == null ? WeightFormat.F32 : weights;
  }
}
