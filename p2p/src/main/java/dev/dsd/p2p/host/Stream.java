package dev.dsd.p2p.host;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.yamux.YamuxStreamChannel;

/**
 * A negotiated stream: its Netty channel (add handlers to {@code channel().pipeline()}), the remote
 * peer and the protocol both sides agreed on.
 */
public record Stream(YamuxStreamChannel channel, PeerId remotePeer, String protocol) {
  /** Half-closes: sends FIN after what was written; the stream stays readable. */
  public void closeWrite() {
    channel.shutdownOutput();
  }
}
