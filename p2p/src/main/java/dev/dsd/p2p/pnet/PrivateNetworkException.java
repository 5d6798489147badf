package dev.dsd.p2p.pnet;

import dev.dsd.p2p.core.P2pException;

/**
 * A connection could not join the private network: the remote has a different swarm key, none at
 * all, or stayed silent. Not a protocol violation: the remote may be a healthy node of another swarm.
 */
public class PrivateNetworkException extends P2pException {
  public PrivateNetworkException(String message) {
    super(message);
  }

  public PrivateNetworkException(String message, Throwable cause) {
    super(message, cause);
  }
}
