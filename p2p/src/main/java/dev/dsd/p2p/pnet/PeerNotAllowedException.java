package dev.dsd.p2p.pnet;

import dev.dsd.p2p.core.P2pException;
import dev.dsd.p2p.core.PeerId;

/** The remote authenticated as a peer that is not on the host's allowlist ({@code HostConfig.allowPeers}). */
public class PeerNotAllowedException extends P2pException {
  private final PeerId peer;

  public PeerNotAllowedException(PeerId peer, int allowed) {
    super("peer " + peer + " is not in allowPeers (" + allowed + " peers allowed)");
    this.peer = peer;
  }

  public PeerId peer() {
    return peer;
  }
}
