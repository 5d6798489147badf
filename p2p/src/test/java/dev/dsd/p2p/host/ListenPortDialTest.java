package dev.dsd.p2p.host;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.multiaddr.Multiaddr;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * An ordinary dial from the listen port still in flight is given up when a hole punch to the same
 * address starts (DCUtR calls this before SYNC): it fails at once, long before the dial timeout.
 */
class ListenPortDialTest {
  @Test
  void aDialInFlightFromTheListenPortIsGivenUpForAHolePunch() throws Exception {
    // accepts TCP and never speaks: the dial stays in its upgrade until the 10 s dial timeout
    try (ServerSocket silent = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
        NettyHost h = new NettyHost(Identity.generate(), HostConfig.loopback()).start();
        NettyHost other = new NettyHost(Identity.generate(), HostConfig.loopback()).start()) {
      h.setDialFromListenPort(true);
      Multiaddr addr = Multiaddr.parse("/ip4/127.0.0.1/tcp/" + silent.getLocalPort());
      CompletableFuture<Connection> dial = h.connect(addr.withPeer(other.peerId()));
      Thread.sleep(300);
      assertFalse(dial.isDone(), "the dial is in flight");
      h.abortListenPortDials(List.of(Multiaddr.parse("/ip4/127.0.0.1/tcp/1"))); // another address: no effect
      Thread.sleep(100);
      assertFalse(dial.isDone());
      long start = System.nanoTime();
      h.abortListenPortDials(List.of(addr));
      ExecutionException e = assertThrows(ExecutionException.class, () -> dial.get(5, TimeUnit.SECONDS));
      assertTrue(e.getCause().getMessage().contains("hole punch"), e.getCause().getMessage());
      assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "given up at once, not at the dial timeout");
    }
  }
}
