package dev.dsd.p2p.pnet;

import io.netty.channel.Channel;
import io.netty.util.concurrent.Future;
import java.time.Duration;

/**
 * Puts a connection into the private network of one swarm key (libp2p pnet, PSK v1): the
 * {@link PnetReader} and {@link PnetWriter} go first in the pipeline, before multistream-select, on
 * dialed and accepted connections alike.
 *
 * <pre>
 *   each direction: | 24-byte random nonce | XSalsa20(PSK, nonce) ⊕ everything else |
 * </pre>
 */
public final class ConnectionProtector {
  public static final String READER = "pnet-reader";
  public static final String WRITER = "pnet-writer";

  private final SwarmKey key;
  private final Duration timeout;

  /** @param timeout how long the remote may take to prove it holds the key (see {@link PnetReader}) */
  public ConnectionProtector(SwarmKey key, Duration timeout) {
    this.key = key;
    this.timeout = timeout;
  }

  public SwarmKey key() {
    return key;
  }

  /** Installs the pair; the future succeeds once the remote proved to hold the same key. */
  public Future<Void> protect(Channel ch) {
    PnetReader reader = new PnetReader(key, timeout);
    ch.pipeline().addFirst(WRITER, new PnetWriter(key));
    ch.pipeline().addFirst(READER, reader);
    return reader.result();
  }
}
