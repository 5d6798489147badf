package dev.dsd.p2p.host;

import dev.dsd.p2p.core.PeerId;
import dev.dsd.p2p.multiaddr.Multiaddr;
import dev.dsd.p2p.yamux.YamuxSession;
import io.netty.channel.Channel;

/**
 * An upgraded connection: authenticated remote peer, its address, and the stream multiplexer.
 *
 * @param channel what the secure channel runs over: a TCP socket, or for a relayed connection the
 *     relay's stream (any Netty channel carries the same {@link Upgrader} chain)
 * @param relayed whether the bytes pass through a relay rather than straight between the two peers
 */
public record Connection(Channel channel, PeerId remotePeer, Multiaddr remoteAddr, boolean outbound,
    YamuxSession muxer, boolean relayed) {
  public Connection(Channel channel, PeerId remotePeer, Multiaddr remoteAddr, boolean outbound, YamuxSession muxer) {
    this(channel, remotePeer, remoteAddr, outbound, muxer, false);
  }

  /** Open and still taking new streams (no GO_AWAY from the remote). */
  public boolean isOpen() {
    return channel.isActive() && !muxer.goAwayReceived().isDone();
  }
}
