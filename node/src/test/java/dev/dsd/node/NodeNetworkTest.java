package dev.dsd.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.node.metrics.NodeMetrics;
import dev.dsd.node.swarm.SwarmKeys;
import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The network part of a node comes up before its models load: it joins the swarm through the
 * bootstrap peer at once, yet the DHT names it a provider of nothing until the node provides keys
 * (once its shard can serve), so no peer routes a session to it meanwhile.
 */
class NodeNetworkTest {
  @TempDir
  Path tmp;

  NodeConfig config(List<Multiaddr> bootstrap) {
    return new NodeConfig(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/0")), List.of(), bootstrap, null, null, 0, -1,
        null, 1, 0, tmp, null, null, 0, dev.dsd.node.stage.Fault.NONE, null);
  }

  @Test
  void joinsAtOnceButProvidesNothingUntilTold() throws Exception {
    try (NodeNetwork boot = NodeNetwork.start(config(List.of()), RelayOptions.defaults(), new NodeMetrics());
        NodeNetwork stage = NodeNetwork.start(config(List.of(boot.host.listenAddrs().get(0).withPeer(
            boot.host.peerId()))), RelayOptions.defaults(), new NodeMetrics())) {
      stage.bootstrap().get(20, TimeUnit.SECONDS);
      assertTrue(boot.host.isConnected(stage.host.peerId()), "joined through the bootstrap peer");
      byte[] key = SwarmKeys.anyModel();
      assertEquals(List.of(), boot.dht.findProviders(key, 10).get(10, TimeUnit.SECONDS), "no provider while loading");
      stage.provide(List.of(key));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      List<PeerId> found = List.of();
      while (!found.contains(stage.host.peerId()) && System.nanoTime() < deadline) {
        found = boot.dht.findProviders(key, 10).get(10, TimeUnit.SECONDS);
        Thread.sleep(50);
      }
      assertTrue(found.contains(stage.host.peerId()), "provider once told: " + found);
    }
  }
}
