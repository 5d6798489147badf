package dev.dsd.node.testing;

import dev.dsd.p2p.crypto.Identity;
import dev.dsd.p2p.host.HostConfig;
import dev.dsd.p2p.host.NettyHost;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Closes what a test opened, newest first, after each test ({@code @RegisterExtension}): hosts,
 * shards and services must go down in reverse order or a later close waits on an earlier one.
 */
public final class Closer implements AfterEachCallback {
  private final List<AutoCloseable> open = new ArrayList<>();

  public <T extends AutoCloseable> T keep(T c) {
    open.add(c);
    return c;
  }

  /** Forgets {@code c} (a test closed it itself, e.g. to kill a node). */
  public void forget(AutoCloseable c) {
    open.remove(c);
  }

  /** A started libp2p host on a free loopback port, closed after the test. */
  public NettyHost host() {
    return keep(new NettyHost(Identity.generate(), HostConfig.loopback()).start());
  }

  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    Exception first = null;
    for (int i = open.size() - 1; i >= 0; i--) {
      try {
        open.get(i).close();
      } catch (Exception e) {
        first = first == null ? e : first;
      }
    }
    open.clear();
    if (first != null) {
      throw first;
    }
  }
}
