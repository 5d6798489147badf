package dev.dsd.p2p.host;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.yamux.YamuxSession;
import io.netty.channel.Channel;

/** An upgraded connection: authenticated remote peer, its address, and the stream multiplexer. */
public record Connection(Channel channel, PeerId remotePeer, Multiaddr remoteAddr, boolean outbound,
    YamuxSession muxer) {
  public boolean isOpen() {
    return channel.isActive();
  }

  /** Whether this connection runs through a relay (its address has /p2p-circuit). */
  public boolean isRelayed() {
    return remoteAddr.isCircuit();
  }
}
